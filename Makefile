# The two commands that matter: `make report` (the main job) and `make test`.
# Every target creates .venv on first use and reinstalls it when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: report evaluate test lab bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	bash scripts/install-browser.sh
	touch $(STAMP)

## report: clean the bundled survey, weight, estimate demand, size the teams, write figures/ and build/brief/
## (a person's reviewed cleaning log in survey/decisions/cleaning_decisions.csv is used when it exists)
DECISIONS := survey/decisions/cleaning_decisions.csv
report: $(STAMP)
	$(PY) -m analysis run $(if $(wildcard $(DECISIONS)),--decisions $(DECISIONS))

## evaluate: compare the bundled 2012 survey with the simulated 2013 wave beside it (build/evaluation/,
## figures/annual_change.*); notebook 06 shows the same step and is refreshed by `make notebooks`
evaluate: $(STAMP)
	$(PY) -m analysis evaluate --waves survey survey/waves/2013 --out build/evaluation

## test: unit, property and reference tests, then every notebook under nbval
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=600 notebooks

## lab: Jupyter Lab on the notebooks
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

## bench: speed, memory and scaling against R survey and svy; writes benchmarks/results.md
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py --out benchmarks

## notebooks: re-execute the committed notebooks in place (after changing analysis/)
notebooks: $(STAMP)
	$(PY) -m analysis run --in-place

clean:
	rm -rf build .pytest_cache .hypothesis
