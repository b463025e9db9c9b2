# Two commands do everything on a machine with Python 3.11, git and make:
#   make demo   create .venv, install vasomics, run the CT chain on the bundled real CT and a generated one (prints the summary paths)
#   make test   create .venv, install vasomics with test extras, run the whole suite
# (two pytest workers on the two CI cores, each with single-threaded BLAS: no oversubscription)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= test

.PHONY: demo test lint install docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/vasomics demo -o demo_output

test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/ruff check src tests benchmarks
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: install
	$(BIN)/ruff check src tests benchmarks

docs: install
	$(BIN)/python -m vasomics.features.docs docs/features.md

clean:
	rm -rf $(VENV) demo_output .pytest_cache
