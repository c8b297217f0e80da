"""One family of errors: each also inherits the matching builtin, and says what was expected."""

from __future__ import annotations


class BenzotaperError(Exception):
    """Base of every error the package raises on purpose."""


class KnowledgeError(ValueError, BenzotaperError):
    """A knowledge file is malformed: names the file, the field and the value."""


class UnknownDrugError(LookupError, BenzotaperError):
    """A drug name that is not in the knowledge base (with suggestions)."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = (
            f"; did you mean {', '.join(repr(s) for s in suggestions)}?"
            if suggestions
            else "; expected a drug name such as 'diazepam' (`benzotaper drugs` lists them)"
        )
        super().__init__(f"unknown drug {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions


class UnitError(ValueError, BenzotaperError):
    """A dose or concentration that cannot be parsed or is in the wrong unit."""


class ImplausibleValueError(ValueError, BenzotaperError):
    """A value that parses but is outside what is plausible (negative, zero, too large)."""


class RegimenError(ValueError, BenzotaperError):
    """A dosing instruction (sig) that cannot be understood."""


class ModelError(ValueError, BenzotaperError):
    """A drug lacks the pharmacokinetic data a simulation needs."""


class PlanError(ValueError, BenzotaperError):
    """A taper plan cannot be made as asked (no products, no schedule within the limits, bad option)."""


class AssessmentError(ValueError, BenzotaperError):
    """Answers, a screen or a timeline that cannot be scored as given (names the item or field)."""


class LevelsError(ValueError, BenzotaperError):
    """Serum levels that cannot be read or used as given (names the row, the column and the value)."""


class CohortError(ValueError, BenzotaperError):
    """OMOP input that cannot be used as given (names the table, the column and what is accepted)."""


class FhirError(ValueError, BenzotaperError):
    """A FHIR bundle, resource or CDS Hooks request that cannot be read (names the resource and the field)."""


class BackupError(ValueError, BenzotaperError):
    """A backup that cannot be written, read or restored as asked (names the file and what is accepted)."""
