# mlops_kit: two commands set up a fresh machine.
#   make demo   the main job on the embedded default (no cloud account)
#   make test   lint + type check + the test suite (with CI set: missing components fail;
#               see docs/testing.md)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-lock
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# pip warns about every package missing from secondary local indexes; keep real errors only
QUIET_PIP := grep -v -e "is ignored: it is neither a file nor a directory" || true

.PHONY: install demo test lint typecheck unit postgres checkov bench mutation clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing the locked environment into $(VENV) (first time: about 3 minutes)"
	@$(PIP) install -r requirements/lock.txt 2>&1 | $(QUIET_PIP)
	@$(PIP) install --no-deps -e . 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import mlops_kit, duckdb, kfp, moto" >/dev/null
	@touch $(STAMP)

install: $(STAMP)  ## create .venv from the lock file

# checkov pins packaging<24 and brings its own HCL parser: it lives in its own virtualenv
CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): infra/terraform/requirements-checkov.txt
	@test -x .venv-checkov/bin/python || $(PY) -m venv .venv-checkov
	@echo "installing checkov into .venv-checkov"
	@(.venv-checkov/bin/python -m pip --disable-pip-version-check -q install \
		-r infra/terraform/requirements-checkov.txt 2>&1 | $(QUIET_PIP)) && touch $@ \
		|| echo "checkov could not be installed; tests/terraform/test_checkov.py will say why"

checkov: $(CHECKOV_STAMP)  ## checkov in its own virtualenv, .venv-checkov

# The PostgreSQL tests start a real server with initdb and pg_ctl. They are looked for where
# tests/conftest.py looks: on PATH, in `pg_config --bindir`, and where Debian and Ubuntu put
# them (/usr/lib/postgresql/<version>/bin, not on PATH).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -q -y
postgres:  ## the PostgreSQL server binaries (apt-get install postgresql when missing)
	@if { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 \
		|| { test -x "$$(pg_config --bindir 2>/dev/null)/initdb" \
			&& test -x "$$(pg_config --bindir 2>/dev/null)/pg_ctl"; } \
		|| ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; \
	then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries not found: installing the postgresql package"; \
		$(APT) install postgresql || { $(APT) update && $(APT) install postgresql; } \
			|| echo "apt-get could not install postgresql; the PostgreSQL tests will say so"; \
	else \
		echo "PostgreSQL server binaries (initdb, pg_ctl) not found and no apt-get here:" \
			"install PostgreSQL; the PostgreSQL tests will say so"; \
	fi

demo: install  ## run the pipeline end to end on the embedded default
	$(BIN)/mlops-kit demo

lint: install  ## ruff check + format check
	$(BIN)/ruff check --no-cache src tests benchmarks examples pipelines
	$(BIN)/ruff format --no-cache --check src tests benchmarks examples pipelines

typecheck: install  ## mypy over the library
	$(BIN)/mypy

unit: install postgres $(CHECKOV_STAMP)  ## the test suite only
	$(BIN)/python -m pytest

test: lint typecheck unit  ## lint, type check and the whole test suite

bench: install  ## benchmarks side by side with their baselines -> docs/benchmarks.md
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/serving.py

mutation: install  ## mutation score of the modules that guard data and models -> docs/testing.md (slow)
	$(BIN)/python benchmarks/mutation.py $(if $(ONLY),--only $(ONLY),)

clean:  ## remove the local state of demos (not the venv)
	rm -rf .mlops_kit
