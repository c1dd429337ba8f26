# The two commands of the README: `make run` and `make test`.
# Each creates .venv (Python 3.10) and installs the package with its pinned
# constraints the first time; afterwards setup is a no-op.

VENV := .venv
STAMP := $(VENV)/.installed
# Airflow cannot share .venv's pins (constraints-airflow.txt says why): its own venv, for the DAG and its test.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
# Python 3.10: pyenv's copy (named in .python-version) when present, else python3.10 on PATH.
PYTHON ?= $(shell v=$$(cat .python-version); \
            for root in "$$PYENV_ROOT" "$$(pyenv root 2>/dev/null)" "$$HOME/.pyenv"; do \
              p="$$root/versions/$$v/bin/python3.10"; if [ -n "$$root" ] && [ -x "$$p" ]; then echo "$$p"; exit; fi; \
            done; command -v python3.10 || echo python3.10)
# Full MNIST beside the checkout, as on the project's machines; overridable.
MNIST_DATA_DIR ?= $(wildcard $(abspath ../shared/data/mnist))
export MNIST_DATA_DIR
ARGS ?=
PYTEST_ARGS ?=
# Test processes (pytest-xdist), each taking a module at a time: most of an e2e test's time is one process
# (imports, TFX's orchestration, Beam's in-process runner), so two share two cores well (docs/benchmarks.md).
TEST_WORKERS ?= 2

.PHONY: run test test-fast lint setup airflow clean

setup: $(STAMP)

airflow: $(AIRFLOW_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,kfp]'
	@touch $(STAMP)

$(AIRFLOW_STAMP): pyproject.toml constraints-airflow.txt
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -c constraints-airflow.txt -e '.[kfp,airflow]'
	@touch $(AIRFLOW_STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m pipeline.run $(ARGS)

test: lint $(AIRFLOW_STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The edit-test loop: the linter and the unit tests, without the real pipeline runs (tests/e2e) and the
# tests that train a model for seconds (marked slow); `make test` runs every one. A test at a time per
# worker: unit tests share no expensive fixture.
test-fast: lint
	$(VENV)/bin/python -m pytest -m "not e2e and not slow" -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) runs
