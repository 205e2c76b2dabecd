# Spaceport developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CPU build of torch from local disk; a looser pin would pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
DATASETS ?= $(abspath ../shared/datasets)

.PHONY: help setup lint format test test-fast demo bench clean synth deploy-infra deploy deploy-all deploy-site images push

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# --- deploying to AWS (docs/DEPLOY.md) ------------------------------------------------------
DEPLOYMENT ?= prod
SERVICE ?=
CHALICE_APPS := gateway sfm train compress notify sweeper
JOB_IMAGES := sfm train compress
# The job images' tag: the commit, marked -dirty when the tree has changes (ECR tags are immutable).
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
CDK_CLI := aws-cdk@2.1148.1
# Extra CDK context for deploy-infra, e.g. CDK_ARGS="-c operator_email=ops@example.org"
CDK_ARGS ?=
# jsii (aws-cdk-lib) warns loudly on node 20; the synthesised template is the same.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

synth: setup ## Synthesise the CDK stack into infra/cdk.out and lint it (offline)
	cd infra && CDK_OUTDIR=cdk.out CDK_CONTEXT_JSON='{"deployment": "$(DEPLOYMENT)", "image_tag": "$(IMAGE_TAG)"}' ../$(BIN)/python app.py
	$(BIN)/cfn-lint infra/cdk.out/spaceport-$(DEPLOYMENT).template.json
	@echo "infra/cdk.out/spaceport-$(DEPLOYMENT).template.json"

deploy-infra: synth ## Deploy the shared stack (DEPLOYMENT=prod; needs AWS credentials and cdk bootstrap)
	cd infra && npx --yes $(CDK_CLI) deploy spaceport-$(DEPLOYMENT) -c deployment=$(DEPLOYMENT) -c image_tag=$(IMAGE_TAG) $(CDK_ARGS) --require-approval broadening

deploy: setup ## chalice deploy one app: make deploy SERVICE=gateway|sfm|train|compress|notify|sweeper [DEPLOYMENT=prod]
	@test -n "$(SERVICE)" || { echo "usage: make deploy SERVICE=gateway|sfm|train|compress|notify|sweeper"; exit 2; }
	$(BIN)/python -m spaceport_infra.chalice_apps prepare $(SERVICE) --deployment $(DEPLOYMENT)
	cd $$($(BIN)/python -m spaceport_infra.chalice_apps path $(SERVICE)) && SPACEPORT_MAKE_DEPLOY=1 $(abspath $(BIN))/chalice deploy --stage $(DEPLOYMENT)
	$(BIN)/python -m spaceport_infra.chalice_apps finish $(SERVICE) --deployment $(DEPLOYMENT)

deploy-all: ## chalice deploy every app (services first, then the gateway)
	for app in sfm train compress notify sweeper gateway; do $(MAKE) deploy SERVICE=$$app DEPLOYMENT=$(DEPLOYMENT) || exit 1; done

deploy-site: setup web ## Publish web/dist, with /config.json for the gateway, to the site bucket
	$(BIN)/python -m spaceport_infra.chalice_apps site gateway --deployment $(DEPLOYMENT)

images: ## Build the three job images, compress from train (needs Docker; IMAGE_TAG = git commit)
	for stage in $(JOB_IMAGES); do \
	  docker build -f services/$$stage/Dockerfile --build-arg TRAIN_IMAGE=spaceport-$(DEPLOYMENT)-train:$(IMAGE_TAG) \
	    -t spaceport-$(DEPLOYMENT)-$$stage:$(IMAGE_TAG) . || exit 1; \
	done

push: ## Push the job images to ECR as IMAGE_TAG (needs Docker, the AWS CLI and the stack)
	region=$${AWS_REGION:-$$(aws configure get region)} && \
	registry=$$(aws sts get-caller-identity --query Account --output text).dkr.ecr.$$region.amazonaws.com && \
	aws ecr get-login-password --region $$region | docker login --username AWS --password-stdin $$registry && \
	for stage in $(JOB_IMAGES); do \
	  image=spaceport-$(DEPLOYMENT)-$$stage:$(IMAGE_TAG); \
	  docker tag $$image $$registry/$$image && docker push $$registry/$$image || exit 1; \
	done

# PlayCanvas' splat-transform (pinned in package-lock.json) for the SOG interop test and the
# compression benchmark; skipped, with a note, where npm is missing (the interop test then skips).
INTEROP_DIR := services/compress/interop
INTEROP_STAMP := $(INTEROP_DIR)/node_modules/.package-lock.json
$(INTEROP_STAMP): $(INTEROP_DIR)/package-lock.json
	@if command -v npm >/dev/null; then cd $(INTEROP_DIR) && npm ci --no-audit --no-fund; \
	else echo "npm not found: skipping @playcanvas/splat-transform (the SOG interop test will skip)"; fi

setup: $(STAMP) $(INTEROP_STAMP) ## Create .venv and install everything (idempotent)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: the web app (web/) is not built; install node/npm and run make web"; fi

# --- the web app (web/): upload page, job page, splat viewer; served from web/dist -----------
.PHONY: web
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.js web/standalone.html web/vite.standalone.config.js

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
	$(BIN)/pip install --quiet -e ".[jobs,dev,infra]" "$(TORCH_PIN)"
	touch $(STAMP)

# What mypy checks: the shared package, every job package, plas and the deploy tooling.
MYPY_PACKAGES := -p spaceport -p spaceport_sfm -p spaceport_train -p spaceport_compress -p plas -p spaceport_infra

lint: setup ## ruff (lint and format check) and mypy (strict on contracts and adapters)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PACKAGES)

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup ## Run the test suite (shared datasets are used when present)
	SPACEPORT_DATASETS="$${SPACEPORT_DATASETS:-$(wildcard $(DATASETS))}" $(BIN)/pytest -q

test-fast: setup ## Run the tests that take no real reconstruction or training
	$(BIN)/pytest -q -m "not slow"

demo: setup ## Run the whole pipeline locally on a generated sample: photos -> SfM -> splat -> SOG -> email
	$(BIN)/spaceport sample demo-out/sample.zip --n 24
	$(BIN)/spaceport run demo-out/sample.zip --email demo@example.com --preset quick

clean: ## Remove the virtualenv and generated outputs
	rm -rf $(VENV) demo-out spaceport-out .pytest_cache
