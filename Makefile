# The two commands that matter: `make report` (the main job) and `make test`.
# Every target creates .venv on first use, installing the pinned versions of requirements.lock (hashes
# checked), and reinstalls when pyproject.toml or the lock changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
PYTEST := $(PY) -m pytest -q -p no:cacheprovider
# The cell timeout only guards against a hung kernel: a cell's wall time grows with the machine's load, so
# it is set far above any cell's time here (CI's own limit is 90 minutes).
NBVAL  := --nbval --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=3600 --nbval-kernel-startup-timeout=600
# Tools that make and check the lock live in their own venv (never in the project's).
TOOLS  := build/lock-tools
TOOLS_PINS := uv==0.13.9 pip==26.3 packaging==26.4

.PHONY: report evaluate test study test-fast lint lock check-lock results lab bench notebooks clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) scripts/lock.py fresh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
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

## test: unit, property and reference tests (slow ones included, the simulation studies left to `make study`),
## one worker per core (each test file stays on one worker), then every notebook under nbval
test: $(STAMP)
	$(PYTEST) -m "not study" -n 2 --dist loadfile tests
	$(PYTEST) $(NBVAL) notebooks

## study: the repeated-sample simulation studies (interval coverage, replicate weights, small areas, the
## annual change; about 12 CPU minutes): each recomputes its result file and compares it with tests/results/
study: $(STAMP)
	$(PYTEST) -m study -n 2 --dist loadfile tests

## test-fast: the loop while working: every test except the slow statistical checks, no notebooks, one
## worker per core (each test file stays on one worker, so its module fixtures are built once)
test-fast: $(STAMP)
	$(PYTEST) -m "not slow and not study" -n auto --dist loadfile tests

## lint: ruff with the rules in pyproject.toml (110-character lines)
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## lock: regenerate requirements.lock (and environment.yml) from pyproject.toml; needs PyPI
lock: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/lock.py compile $(TOOLS)/bin/uv

## check-lock: the lock installs on CPython 3.11, 3.12 and 3.13 (wheels and hashes, nothing installed)
check-lock: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/lock.py resolves

$(TOOLS)/.installed: Makefile
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet $(TOOLS_PINS)
	touch $@

## results: regenerate the committed result files in tests/results/ (slow: run after a deliberate change;
## `make test` writes its own copies under build/results/ and compares them with these)
results: $(STAMP)
	UPDATE_RESULTS=1 $(PYTEST) -m results tests
	$(PY) tests/replicate_coverage.py
	$(PY) tests/test_sae_coverage.py
	$(PY) tests/test_evaluate_coverage.py

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
