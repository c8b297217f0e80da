"""benzotaper: safe benzodiazepine and Z-drug tapering, from facts to plans."""

__version__ = "0.1.0"
