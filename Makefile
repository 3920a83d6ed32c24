# The two commands a fresh machine needs: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2
NODE   ?= node

.PHONY: demo test install bench emulate clean node

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "presence-sync needs Python 3.11 or newer (found $$($(PYTHON) --version)). Install it, or run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/presence-sync demo $(ARGS)

# The Salesforce component's logic is tested under Node's own test runner, then everything else under pytest.
# --dist loadgroup: tests marked xdist_group run together on one worker (the real-worker test owns its own).
test: $(STAMP) node
	$(NODE) --test salesforce/tests/js
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(ARGS)

node:
	@command -v $(NODE) >/dev/null 2>&1 || { \
		echo "Node.js is missing: installing the distribution's package (apt-get install -y nodejs)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs; }

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

emulate: $(STAMP)
	$(BIN)/presence-sync emulate $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .presence-sync
