# Beatlytica's dev loop. Every target installs what it needs itself and is safe to re-run:
# uv (into .tools/), the virtualenv (.venv/, from uv.lock), the Java jars (mvn, .cache/jars/).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
JARS := .cache/jars
MVN := mvn -q -B --strict-checksums
TOOLS := .tools/bin
FAKE_GCS_VERSION := v1.56.1
CRANE_VERSION := v0.22.1
BIGQUERY_EMULATOR_VERSION := v0.6.6

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export SPARK_LOCAL_IP := 127.0.0.1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup jars tools chromium demo test lint lint-python lint-sql unit integration kafka-up kafka-down clean

print-%: # the value of a variable, for the tests: make -s print-VARIABLE
	@echo '$($*)'

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.synced jars tools ## uv, the virtualenv, the jars and the emulators

# deployment targets and tools (helm, …) live in k8s/deploy.mk; it adds to DEPLOY_TOOLS
DEPLOY_TOOLS :=
-include k8s/deploy.mk
# the local one-node cluster (cluster-up, cluster-test, …)
include k8s/local/cluster.mk

tools: $(TOOLS)/fake-gcs-server $(TOOLS)/crane chromium $(DEPLOY_TOOLS) ## emulators and binaries the tests use

# Debian's Chromium renders the dashboard in the tests (headless)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

$(TOOLS)/fake-gcs-server:
	GOBIN=$(CURDIR)/$(TOOLS) go install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)

# go-containerregistry's crane: its in-memory OCI registry is the one `beatlytica pin-images`
# is tested against (tests/integration/test_pin_images.py)
$(TOOLS)/crane:
	CGO_ENABLED=0 GOBIN=$(CURDIR)/$(TOOLS) go install \
	  github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

.PHONY: pin-base-images
pin-base-images: $(VENV)/.synced ## pin images/Dockerfile's base images to their digests (asks the registries)
	$(BIN)/beatlytica pin-images --dockerfile images/Dockerfile

# goccy/bigquery-emulator runs BigQuery SQL with ZetaSQL (C++ through cgo, built with clang++).
# Its first build takes about 25 minutes on 2 cores, so it is not part of `make tools`: built
# once per machine into the cache, keyed by version, it lets the BigQuery macro test run (the
# test says to run this target when the binary is missing). Built in a throwaway module that
# requires the exact version: `go install …@version` reads the module's version list (for
# deprecations), which the module proxy refuses for it.
CACHE_DIR := $(or $(BEATLYTICA_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/beatlytica)
BIGQUERY_EMULATOR := $(CACHE_DIR)/bigquery-emulator-$(BIGQUERY_EMULATOR_VERSION)/bigquery-emulator
.PHONY: bigquery-emulator
bigquery-emulator: $(BIGQUERY_EMULATOR) ## the BigQuery emulator for the macro test (~25 min once)
$(BIGQUERY_EMULATOR):
	@command -v clang++ >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q --no-install-recommends clang; }
	rm -rf $(@D).tmp && mkdir -p $(@D).tmp
	printf 'module tools\n\ngo 1.21.5\n\nrequire github.com/goccy/bigquery-emulator %s\n' \
	  $(BIGQUERY_EMULATOR_VERSION) > $(@D).tmp/go.mod
	cd $(@D).tmp && CGO_ENABLED=1 CXX=clang++ go build -mod=mod \
	  -o bigquery-emulator github.com/goccy/bigquery-emulator/cmd/bigquery-emulator
	rm -rf $(@D) && mkdir -p $(@D) && mv $(@D).tmp/bigquery-emulator $@ && rm -rf $(@D).tmp

$(UV):
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --all-extras --locked
	touch $@

jars: $(JARS)/kafka/.done $(JARS)/spark/.done ## Kafka broker and Spark connector jars via mvn

$(JARS)/%/.done: jars/%/pom.xml
	rm -rf $(JARS)/$*
	$(MVN) -f $< dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)/$*
	touch $@

# the demo needs only uv, the virtualenv and the jars: no emulator, Chromium, Helm or schemas
demo: $(VENV)/.synced jars ## the whole pipeline on this machine, no cluster, no cloud
	$(BIN)/beatlytica demo

test: setup lint ## everything CI runs: lint, unit and integration tests; in CI the cluster tests too
	$(BIN)/pytest --ignore=tests/cluster
ifeq ($(CI),true)
	$(MAKE) --no-print-directory cluster-test
else
	@echo "make test: the cluster tests (tests/cluster) run in CI and with 'make cluster-test' (root, the local cluster)"
endif

lint: lint-python lint-sql ## every linter (pre-commit runs the same two targets)

lint-python: $(VENV)/.synced ## ruff (lint and format) and mypy (strict) on src/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-sql: $(VENV)/.synced ## sqlfluff on the dbt project (dbt templater, dbt/.sqlfluff)
	@mkdir -p .cache
	cd dbt && BEATLYTICA_DUCKDB_PATH=$(CURDIR)/.cache/sqlfluff.duckdb \
		$(CURDIR)/$(BIN)/sqlfluff lint --nocolor models tests/*.sql

unit: setup ## the tests that need no server
	$(BIN)/pytest tests/unit

integration: setup ## the tests against real local components
	$(BIN)/pytest tests/integration

kafka-up: setup ## start the local Kafka broker (KRaft) and create the topics
	$(BIN)/beatlytica kafka up

kafka-down: ## stop the local Kafka broker
	@if [ -x $(BIN)/beatlytica ]; then $(BIN)/beatlytica kafka down; fi

clean: kafka-down ## remove the demo state (.beatlytica/); keeps tools and caches
	rm -rf .beatlytica
