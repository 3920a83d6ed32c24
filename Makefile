# The two commands a fresh machine needs: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test install bench emulate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "presence-sync needs Python 3.11 or newer (found $$($(PYTHON) --version)). Install it, or run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/presence-sync demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

emulate: $(STAMP)
	$(BIN)/presence-sync emulate $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .presence-sync
