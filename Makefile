# Every target sets itself up: a fresh clone needs only Python 3.11+ and Node.js.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
export CDK_DISABLE_VERSION_CHECK := 1
# jsii prints a large banner on Node.js 20 at every synth; the CDK itself works there.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup demo test lint typecheck unit integration infra synth bench clean

setup: $(STAMP) $(CDK)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(CDK)

## demo: create a compliant and a non-compliant AMI on an embedded AWS and show what governance did
demo: setup
	$(BIN)/python scripts/demo.py

## test: lint, type-check and every test suite (unit, integration, infra incl. cdk-nag and cfn-lint)
test: setup lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest tests/unit

integration: setup
	$(BIN)/python -m pytest tests/integration

infra: setup
	$(BIN)/python -m pytest tests/infra

## synth: synthesize the stacks with the pinned CDK CLI (cdk-nag runs as part of synth)
synth: setup
	$(CDK) synth --no-notices -q

## bench: API calls per event, import time, asset size (figures quoted in the README)
bench: setup
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
