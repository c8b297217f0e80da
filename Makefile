# One task runner, a handful of verbs. Everything installs into .venv from PyPI.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,web,fhir,cohort,spark]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/benzotaper serve --demo

test: install
	bash scripts/install-java.sh
	bash scripts/install-chromium.sh
	PY=$(PY) bash scripts/test-all.sh

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/pk_population.py
	$(PY) bench/taper_plan.py
	$(PY) bench/mirror.py
	$(PY) bench/tdm_fit.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
