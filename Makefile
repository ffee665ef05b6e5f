# Bootstrap only: a fresh machine needs nothing but python3.11 and make.
# `make report` builds the default zoo, benchmarks it and writes reports/REPORT.md;
# `make test` runs the test suite. Both create .venv with tox, and tox installs the project.
PYTHON ?= python3.11
VENV := .venv
TOX := $(VENV)/bin/tox

.PHONY: report test quick bench lint gate multilabel clean

$(TOX):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "tox==4.67.13"

report: $(TOX)
	@test -d .tox/report || echo "make report: first run: tox installs torch, transformers, onnxruntime... into .tox/report (about 1-2 min, pip is quiet meanwhile)"
	$(TOX) -e report

test: $(TOX)
	@test -d .tox/py || echo "make test: first run: tox installs torch, transformers, onnxruntime... into .tox/py (about 1-2 min, pip is quiet meanwhile)"
	$(TOX) -e py

# the quick tier: no subprocess runs and no builds beyond one tiny zoo (CI runs the whole suite)
quick: $(TOX)
	$(TOX) -e py -- -m "not slow" tests

bench: $(TOX)
	$(TOX) -e bench

# the multi-label example: vader-multilabel's source x sentiment groups, reports/multilabel/REPORT.md
multilabel: $(TOX)
	$(TOX) -e multilabel

gate: $(TOX)
	$(TOX) -e gate

lint: $(TOX)
	$(TOX) -e lint

clean:
	rm -rf $(VENV) .tox .pytest_cache .benchmarks
