"""Where exported resources live in a bundle: deterministic urn:uuid full URLs, the subject reference, the offset."""

from __future__ import annotations

from dataclasses import dataclass

from benzotaper.fhir.codes import Coder
from benzotaper.fhir.elements import Json, reference, uid
from benzotaper.knowledge.fhir_codes import FhirCodes


@dataclass(frozen=True)
class ExportContext:
    """One patient's export: the coder, the patient id, and the UTC offset written on wall-clock times."""

    coder: Coder
    patient_id: str
    offset: str = "+00:00"

    @property
    def codes(self) -> FhirCodes:
        """fhir.toml."""
        return self.coder.codes

    def url(self, kind: str, *key: str) -> str:
        """A stable 'urn:uuid:...' full URL for a resource of this patient."""
        return f"urn:uuid:{uid(self.codes.local_base, self.patient_id, kind, *key)}"

    @staticmethod
    def resource_id(url: str) -> str:
        """The resource id that goes with a urn:uuid full URL."""
        return url.removeprefix("urn:uuid:")

    @property
    def patient_url(self) -> str:
        """Full URL of the Patient entry."""
        return self.url("Patient")

    def subject(self) -> Json:
        """Reference to the patient."""
        return reference(self.patient_url)

    def ext(self, name: str) -> str:
        """URL of a benzotaper extension."""
        return self.codes.local("StructureDefinition", name)
