# faceindex: `make demo` and `make test` work on a fresh machine (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# How dlib is installed: "source" (compiled against OpenBLAS; ~8 min once, then cached by pip)
# or "bin" (the dlib-bin wheel, no BLAS). docs/BENCHMARKS.md has the measurements.
DLIB   ?= source
EXTRAS := dev,server,postgres,milvus

.PHONY: install demo test test-slow lint bench clean

$(VENV)/.installed: pyproject.toml Makefile scripts/install-dlib.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	bash scripts/install-dlib.sh $(BIN)/pip $(DLIB)
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: install
	bash scripts/demo.sh

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-home .pytest_cache
