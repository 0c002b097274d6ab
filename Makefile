# The two commands of the README. Each builds .venv on a fresh machine first.
#   make plan              offline plan of the default stack (aws-dev)
#   STACK=gcp-dev make plan
#   make test              pytest (including pyright over components/, blueprints/, dragonfarm/)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= aws-dev
STAMP  := $(VENV)/.installed

.PHONY: plan test cost lock bench clean

$(STAMP): requirements.lock requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/dragonfarm plan $(STACK)

test: $(STAMP)
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
	rm -rf $(VENV)
