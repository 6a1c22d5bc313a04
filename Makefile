# Everything runs inside .venv, built from the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES ?= ../shared/samples

.PHONY: demo test lint typecheck unit bench samples clean

$(STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/arflow simulate examples/demo/scenario.yaml --out out/demo

samples: $(STAMP)
	$(BIN)/arflow simulate $(SAMPLES) --out out/samples

lint: $(STAMP)
	$(BIN)/ruff check functions infra tests
	$(BIN)/ruff format --check functions infra tests

typecheck: $(STAMP)
	$(BIN)/mypy functions infra

test: lint typecheck
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m arflow_local.bench

clean:
	rm -rf $(VENV) out .aws-sam
