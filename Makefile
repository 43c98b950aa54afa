# The two commands of the README: `make demo` and `make test`. Each sets up the
# virtual environment first (once; again when setup.cfg changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,viz,serving,litert,beam,spark]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/diqa demo --output demo_output

test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) demo_output build *.egg-info
