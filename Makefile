# Every target sets itself up: a fresh clone needs only Python 3.11+ and Node.js.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
export CDK_DISABLE_VERSION_CHECK := 1
# jsii prints a large banner on Node.js 20 at every synth; the CDK itself works there.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

PORT ?= 4566

.PHONY: setup demo emulator test lint typecheck unit integration infra e2e emulator-tests iam-usage synth bench clean

setup: $(STAMP) $(CDK)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(CDK)

## demo: a scripted tour of the governance stack on the local emulator
demo: setup
	$(BIN)/python scripts/demo.py

## emulator: the governance stack live on a local AWS endpoint, http://127.0.0.1:$(PORT)
emulator: setup
	$(BIN)/python -m emulator --port $(PORT) --enforce-iam

## test: lint, type-check and every test suite (unit, integration, infra incl. cdk-nag and cfn-lint), and
## granted == used: every AWS call of each Lambda against its role (tests/iam/usage.py)
test: setup lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup --iam-usage=strict

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

e2e: setup
	$(BIN)/python -m pytest tests/e2e

## emulator-tests: the emulator's own tests (deployer, router, CloudTrail records, moto extensions)
emulator-tests: setup
	$(BIN)/python -m pytest tests/emulator

## iam-usage: the suites that run the Lambdas, and the granted-vs-used table of every function's role
iam-usage: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup --iam-usage=strict tests/integration tests/e2e

## synth: synthesize the stacks with the pinned CDK CLI (cdk-nag runs as part of synth)
synth: setup
	$(CDK) synth --no-notices -q

## bench: API calls per event, import time, asset size; then the report on a 3-region estate of 2,000 AMIs and
## 6,000 snapshots a region: calls per listing against the minimum, wall time, peak memory (figures quoted in the README)
bench: setup
	$(BIN)/python scripts/benchmark.py
	$(BIN)/python scripts/report_benchmark.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
