# cgwatch: the two commands a user needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# This project's CI host keeps its own memory cgroup at /process_api; the agent never reads it
# there. Override CGWATCH_ARGS to pass other `cgwatch serve` flags.
CGWATCH_ARGS ?= --ignore-cgroup '/process_api*'

.PHONY: run test test-host test-v2 deps venv dashboards clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@# Debian ships venv/ensurepip apart from python3: install it when missing (needs root).
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dashboards]'
	touch $@

## run: start the agent on this host (/metrics on :9338, API on 127.0.0.1:9339)
run: venv
	$(VENV)/bin/cgwatch serve $(CGWATCH_ARGS)

## deps: Debian packages the tests use (dockerd, busybox image, promtool, QEMU for the v2 guest)
deps:
	bash tests/support/install-deps.sh

## test: everything: host stage (real v1 cgroups, dockerd, promtool), then the cgroup v2 guest stage
test: venv deps
	bash tests/run.sh

## test-host: the host stage alone
test-host: venv deps
	bash tests/run.sh --host-only

## test-v2: the cgroup v2 guest stage alone
test-v2: venv deps
	bash tests/vm/run-v2-stage.sh

## dashboards: regenerate dashboards/json from the grafanalib sources
dashboards: venv
	$(PY) -m dashboards.build

clean:
	rm -rf $(VENV) *.egg-info
