# agentflow — make help lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv comes from PATH when present, else is bootstrapped into .tools/ from PyPI.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): most tests wait on servers and stand-in latency, so 3 overlap well on 2 cores.
TEST_WORKERS ?= 3

.PHONY: help install run demo test test-fast lint format type bench bench-quick screenshots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP) ## create .venv/ with the agentflow command and dev tools (uv, locked)

run: $(STAMP) ## serve for real (reads .env / environment; needs OPENAI_API_KEY)
	$(BIN)/agentflow serve

demo: $(STAMP) ## start offline stand-ins + server, run a reflection and a research workflow, print results
	$(BIN)/python -m tests.demo

test: $(STAMP) ## run the whole test suite (TEST_WORKERS=3 processes; TEST_WORKERS=0 for one)
	@# Bytecode once, up front: with PYTHONDONTWRITEBYTECODE set, every server a test starts would compile it again.
	@$(BIN)/python -m compileall -q backend agents workflows prompts tests bench >/dev/null
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff formatting and fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

type: $(STAMP) ## mypy (strict) on backend, agents, workflows
	$(BIN)/mypy

bench: $(STAMP) ## full benchmark table (bench/results/latest.json)
	$(BIN)/python -m bench

bench-quick: $(STAMP) ## reduced benchmark, under a minute
	$(BIN)/python -m bench --quick

screenshots: $(STAMP) ## refresh docs/img/ (web page, CLI progress) with the browser tests (installs chromium if absent)
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q $(PYTEST_ARGS)

clean: ## remove the virtualenv, tools and local data
	rm -rf $(VENV) .tools data .pytest_cache .mypy_cache .ruff_cache
