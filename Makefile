# The two commands of the README. Each builds .venv on a fresh machine first.
#   make plan              offline plan of the default stack (aws-dev)
#   STACK=gcp-dev make plan
#   make test              pytest (including pyright over components/, blueprints/, dragonfarm/, and the
#                          CrossGuard pack's tests in its own venv policy/.venv)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= aws-dev
STAMP  := $(VENV)/.installed
# The policy pack's own venv: pulumi-policy pins an older protobuf than requirements.lock.
POLICY_STAMP := policy/.venv/.installed

.PHONY: plan test cost lock bench clean

$(STAMP): requirements.lock requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

$(POLICY_STAMP): policy/requirements.txt
	test -x policy/.venv/bin/python || $(PYTHON) -m venv policy/.venv
	policy/.venv/bin/pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $(POLICY_STAMP)

plan: $(STAMP)
	$(BIN)/dragonfarm plan $(STACK)

test: $(STAMP) $(POLICY_STAMP)
	$(BIN)/pytest

# Cost figures and timings of cost/diff per stack (prints; asserts nothing).
bench: $(STAMP)
	$(BIN)/python bench/costs.py

# Rebuild the pinned lock from the versions in pyproject.toml (needs the package registry).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e .[dev]
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^dragonfarm' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) policy/.venv
