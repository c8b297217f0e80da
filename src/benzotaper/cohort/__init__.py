"""Population drug utilisation over OMOP CDM: episodes, daily diazepam-equivalent dose, indicators.

DuckDB by default, Spark at scale: one set of SQL texts (queries.py) behind a thin engine layer.
"""
