# Spaceport developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CPU build of torch from local disk; a looser pin would pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
DATASETS ?= $(abspath ../shared/datasets)

.PHONY: help setup test test-fast demo bench clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install everything (idempotent)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: the web app (web/) is not built; install node/npm and run make web"; fi

# --- the web app (web/): upload page, job page, splat viewer; served from web/dist -----------
.PHONY: web
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.js

web: web/dist/index.html ## Build the web app into web/dist (needs npm)

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[jobs,dev]" "$(TORCH_PIN)"
	touch $(STAMP)

test: setup ## Run the test suite (shared datasets are used when present)
	SPACEPORT_DATASETS="$${SPACEPORT_DATASETS:-$(wildcard $(DATASETS))}" $(BIN)/pytest -q

test-fast: setup ## Run the tests that take no real reconstruction or training
	$(BIN)/pytest -q -m "not slow"

demo: setup ## Run the pipeline on a generated sample
	$(BIN)/spaceport sample demo-out/sample.zip --n 24
	$(BIN)/spaceport sfm demo-out/sample.zip demo-out/sfm

clean: ## Remove the virtualenv and generated outputs
	rm -rf $(VENV) demo-out spaceport-out .pytest_cache
