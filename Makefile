# Developer and CI entry points. `make deps` sets up a fresh machine, `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
# The collection must sit at ansible_collections/raibid/queue to be importable: link the work tree there.
COLLECTIONS := $(VENV)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/raibid/queue
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)
# PROGRESS PHASE COMMAND...: runs COMMAND, printing a line every 30 s while it runs.
PROGRESS := bash $(CURDIR)/testbed/lib.sh

.PHONY: deps deploy bench test units functional monitoring s3 sanity lint build kube testbed-up testbed-down testbed-purge \
	molecule clean helm matrix matrix-deps matrix-units matrix-sanity matrix-kube

deps: $(VENV)/.deps-done
	@missing=$$(source testbed/lib.sh && missing_packages "$${RAIBID_DEV_PACKAGES[@]}" | xargs); \
	if [ -n "$$missing" ]; then echo "Installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(PROGRESS) "installing $$missing" \
	    apt-get install -y -qq $$missing >/dev/null; fi
	@mkdir -p $(dir $(COLLECTION_LINK)) && ln -sfn $(CURDIR) $(COLLECTION_LINK)

$(VENV)/.deps-done: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@echo "Installing requirements-dev.txt into $(VENV)"
	@$(PROGRESS) "installing requirements-dev.txt" $(BIN)/pip install -q -r requirements-dev.txt
	touch $@

test: deps units functional monitoring sanity lint build matrix s3 kube

units: deps
	$(BIN)/python -m pytest tests/unit

# Each test starts its own redis-server on a free port and runs in its own tmp_path, so they run two at a time (more makes the idle-time thresholds of test_reclaim.py tight on 2 cores).
functional: deps
	$(BIN)/python -m pytest -n 2 tests/functional

# The alert rules and the dashboard, offline: promtool check/test rules, shipped files in step with their sources.
monitoring: deps $(BIN)/promtool
	$(BIN)/python -m pytest tests/monitoring

# promtool: the system's if there is one, else the binary from Debian's prometheus package, extracted without
# installing the package (so no prometheus service is set up or started).
$(BIN)/promtool: | $(VENV)/.deps-done
	@if found=$$(command -v promtool); then ln -sfn "$$found" $@; else \
	  echo "Extracting promtool from Debian's prometheus package into $(BIN)"; \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; } && \
	  dpkg-deb -x prometheus_*.deb root && install -m 0755 root/usr/bin/promtool $@; fi
	@$@ --version | head -n 1

# The off-cluster copy to S3 and back (tests/s3): the role's S3 tasks against moto's S3 server on 127.0.0.1, run by
# .venv's ansible-playbook with the Python of .venv-s3 (boto3), which also runs the test and checks every object.
S3_VENV ?= $(CURDIR)/.venv-s3
s3: deps $(S3_VENV)/.deps-done
	$(S3_VENV)/bin/python -m pytest tests/s3

$(S3_VENV)/.deps-done: tests/requirements-s3.txt
	$(PYTHON) -m venv $(S3_VENV)
	$(S3_VENV)/bin/pip install -q --upgrade pip
	$(S3_VENV)/bin/pip install -q -r tests/requirements-s3.txt
	touch $@

# ansible-test bootstraps pip in its venvs with a script from a host these machines cannot reach;
# tests/utils/get_pip_offline.py does the same from Python's ensurepip and the package index.
ANSIBLE_TEST_GET_PIP := $(HOME)/.ansible/test/cache/get_pip_24_2.py

# ansible-test needs a real ansible_collections/raibid/queue folder: run it on a copy of the tracked files.
sanity: deps
	@[ -f $(ANSIBLE_TEST_GET_PIP) ] || install -D -m 0644 tests/utils/get_pip_offline.py $(ANSIBLE_TEST_GET_PIP)
	@rm -rf $(VENV)/sanity && mkdir -p $(VENV)/sanity/ansible_collections/raibid/queue
	@git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(VENV)/sanity/ansible_collections/raibid/queue
	cd $(VENV)/sanity/ansible_collections/raibid/queue && git init -q && git add -A && \
	  $(BIN)/ansible-test sanity --python 3.11 --requirements --color no

lint: deps
	$(BIN)/ansible-lint --offline
	$(BIN)/antsibull-changelog lint
	$(BIN)/python tests/utils/role_readme.py --check roles/redis

# The Galaxy tarball: only the product (allowlist), importable by Galaxy (galaxy-importer), installable, documented;
# and the build context of an execution environment with it and helm (building the image needs a container engine).
BUILD := $(VENV)/build
# galaxy-importer wants the versioned name; execution-environment.yml takes a copy under a stable one.
TARBALL = $(BUILD)/raibid-queue-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz
build: deps
	@rm -rf $(BUILD) && mkdir -p $(BUILD)/collections
	$(BIN)/ansible-galaxy collection build --output-path $(BUILD) .
	$(BIN)/python tests/utils/check_tarball.py $(TARBALL)
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/collections $(BIN)/ansible-galaxy collection install --force --offline --no-deps \
	  -p $(BUILD)/collections $(TARBALL)
	@for module in redis_queue redis_queue_info redis_job kube_objects_info; do \
	  ANSIBLE_COLLECTIONS_PATH=$(BUILD)/collections $(BIN)/ansible-doc --json raibid.queue.$$module | grep -q '"examples"' \
	    || { echo "no docs for $$module"; exit 1; }; \
	done
	cd $(BUILD) && $(BIN)/python -m galaxy_importer.main $(TARBALL)
	cp $(TARBALL) $(BUILD)/raibid-queue.tar.gz
	$(BIN)/ansible-builder create -f execution-environment.yml --context $(BUILD)/ee
	$(BIN)/python tests/utils/check_ee_context.py $(BUILD)/ee $(BUILD)/raibid-queue.tar.gz $(BUILD)/collections
	@echo "Built, checked, importable and documented: $(TARBALL)"

# Every test that needs Kubernetes: on RAIBID_TEST_KUBECONFIG's cluster if set, else on the local testbed,
# which is started here and stopped afterwards whatever happens.
kube: deps helm $(S3_VENV)/.deps-done
	@if [ -z "$${RAIBID_TEST_KUBECONFIG:-}" ]; then \
	  trap 'bash testbed/testbed.sh down' EXIT; \
	  RAIBID_TEST_KUBECONFIG=$$(bash testbed/testbed.sh up | tee >(cat >&2) | tail -n 1); \
	  export RAIBID_TEST_KUBECONFIG; \
	fi; \
	$(BIN)/python -m pytest --durations=15 tests/testbed && $(MAKE) --no-print-directory molecule && $(MAKE) --no-print-directory matrix-kube

# The README's deploy command: the cluster of KUBECONFIG or ~/.kube/config, else the local testbed (started here,
# with its progress on the terminal), then the design's own command.
deploy: deps
	@if [ -z "$${KUBECONFIG:-}" ] && [ ! -f "$$HOME/.kube/config" ] && [ -z "$${RAIBID_TEST_KUBECONFIG:-}" ]; then \
	  echo "No KUBECONFIG or ~/.kube/config: deploying on the local testbed (testbed/README.md)"; \
	  bash testbed/testbed.sh up; \
	  command -v helm >/dev/null || bash testbed/tools/helm.sh >/dev/null; \
	fi
	$(BIN)/ansible-playbook setup-redis.yml

# Speed of the role beside a bare helm script, as ratios side by side in one run (not part of make test):
# tests/bench/bench.py, on RAIBID_TEST_KUBECONFIG's cluster or the local testbed.
bench: deps
	$(BIN)/python tests/bench/bench.py

testbed-up:
	@bash testbed/testbed.sh up

testbed-down:
	@bash testbed/testbed.sh down

# Also undoes what down leaves: packages and kernel module the testbed added, its logs and build cache.
testbed-purge:
	@bash testbed/testbed.sh purge

# The role's scenarios; their output is searched for the password the default scenario generated.
# A fresh molecule state directory per run and row: molecule skips prepare while its saved state says "prepared" and
# would reuse the cluster settings (the helm binary included) that an earlier run or the other version row saved.
# RAIBID_HELM_MAJOR pins the testbed's helm 3 for this row (the default scenario's verify checks it).
MOLECULE_SCENARIOS ?= default setup_playbook rollback teardown bad_input replication sentinel
MOLECULE_LOG := $(VENV)/molecule.log
molecule: deps helm
	@: > $(MOLECULE_LOG)
	@export RAIBID_PASSWORD_CANARY=$(VENV)/password-canary RAIBID_HELM_MAJOR=$${RAIBID_HELM_MAJOR:-3}; passed=0; \
	for scenario in $(MOLECULE_SCENARIOS); do \
	  echo "=== molecule scenario $$scenario"; \
	  export MOLECULE_EPHEMERAL_DIRECTORY=$(VENV)/molecule-state/$$scenario; rm -rf $$MOLECULE_EPHEMERAL_DIRECTORY; \
	  $(BIN)/molecule test -s $$scenario 2>&1 | tee -a $(MOLECULE_LOG) || { echo "molecule: $$passed passed, 1 failed"; exit 1; }; \
	  passed=$$((passed + 1)); \
	done; \
	$(BIN)/python tests/utils/check_no_leak.py $$RAIBID_PASSWORD_CANARY $(MOLECULE_LOG); \
	echo "molecule: $$passed passed, 0 failed"

clean:
	rm -rf $(VENV) $(AC221_VENV) $(S3_VENV) tests/output

# helm 3 and helm 4 from their Go modules (testbed/tools/helm.sh; in the build cache, see testbed/lib.sh; minutes when cold).
helm:
	@bash testbed/tools/helm.sh 3 >/dev/null
	@bash testbed/tools/helm.sh 4 >/dev/null

# The second supported row (README "Supported versions"): ansible-core 2.21 (ansible 14.5.0, kubernetes.core
# 6.6.0) on Python 3.12 with helm 4, in its own virtualenv. `make matrix` runs its unit tests and sanity (no
# cluster needed); `make matrix-kube` its default molecule scenario, on the cluster `make kube` provides.
AC221_VENV ?= $(CURDIR)/.venv-ac221
AC221_BIN := $(AC221_VENV)/bin
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
MATRIX_SCENARIOS ?= default
MATRIX_LOG := $(AC221_VENV)/molecule.log

matrix: matrix-units matrix-sanity

matrix-deps: deps $(AC221_VENV)/.deps-done

$(AC221_VENV)/.deps-done: tests/requirements-ac221.txt
	@[ -n "$(PYTHON312)" ] || { echo "The ansible-core 2.21 row needs Python 3.12, found neither ~/.pyenv/versions/3.12.*/bin/python3.12 nor python3.12 on PATH: install it (pyenv install 3.12, or Debian 13's python3.12) or pass PYTHON312=/path/to/python3.12"; exit 1; }
	$(PYTHON312) -m venv $(AC221_VENV)
	$(AC221_BIN)/pip install -q --upgrade pip
	$(AC221_BIN)/pip install -q -r tests/requirements-ac221.txt
	touch $@

matrix-units: matrix-deps
	PATH=$(AC221_BIN):$$PATH $(AC221_BIN)/python -m pytest tests/unit

# ansible-test 2.21 bootstraps pip 25.2 (2.19: 24.2), so it looks for another cached script name.
AC221_GET_PIP := $(HOME)/.ansible/test/cache/get_pip_25_2.py
matrix-sanity: matrix-deps
	@[ -f $(AC221_GET_PIP) ] || install -D -m 0644 tests/utils/get_pip_offline.py $(AC221_GET_PIP)
	@rm -rf $(AC221_VENV)/sanity && mkdir -p $(AC221_VENV)/sanity/ansible_collections/raibid/queue
	@git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(AC221_VENV)/sanity/ansible_collections/raibid/queue
	cd $(AC221_VENV)/sanity/ansible_collections/raibid/queue && git init -q && git add -A && \
	  PATH=$(AC221_BIN):$$PATH $(AC221_BIN)/ansible-test sanity --python 3.12 --requirements --color no

# Needs a cluster: RAIBID_TEST_KUBECONFIG, as `make kube` sets it (else the scenario starts the testbed itself).
matrix-kube: matrix-deps helm
	@: > $(MATRIX_LOG)
	@export RAIBID_PASSWORD_CANARY=$(AC221_VENV)/password-canary RAIBID_HELM_MAJOR=4 PATH=$(AC221_BIN):$$PATH; \
	for scenario in $(MATRIX_SCENARIOS); do \
	  echo "=== molecule scenario $$scenario (ansible-core 2.21, kubernetes.core 6.6.0, helm 4)"; \
	  export MOLECULE_EPHEMERAL_DIRECTORY=$(AC221_VENV)/molecule-state/$$scenario; rm -rf $$MOLECULE_EPHEMERAL_DIRECTORY; \
	  $(AC221_BIN)/molecule test -s $$scenario 2>&1 | tee -a $(MATRIX_LOG) || { echo "matrix: scenario $$scenario failed"; exit 1; }; \
	done; \
	$(AC221_BIN)/python tests/utils/check_no_leak.py $$RAIBID_PASSWORD_CANARY $(MATRIX_LOG)
