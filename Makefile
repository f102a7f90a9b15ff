# faceindex: `make demo` and `make test` work on a fresh machine (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# How dlib is installed: "bin" (the prebuilt dlib-bin wheel: no compiler; dlib only runs HOG
# and the 5-point landmarks, where it is as fast as a native build, since the ResNet and the
# CNN run on ONNX Runtime) or "source" (compiled against OpenBLAS, ~10 min once; only for
# embedder_runtime=dlib / cnn_runtime=dlib). docs/BENCHMARKS.md has the measurements.
DLIB   ?= bin
# The Ray runner's extra is not in a plain install (its tests are slow-marked, and the wheel
# is large): make test-slow adds it.
EXTRAS := dev,server,postgres,milvus,parquet

.PHONY: install demo test test-slow test-milvus-server lint bench-deps bench-ingest clean

$(VENV)/.installed: pyproject.toml Makefile scripts/install-dlib.sh
	DLIB=$(DLIB) bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	bash scripts/install-dlib.sh $(BIN)/pip $(DLIB)
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: install
	bash scripts/demo.sh

test: install
	$(BIN)/python -m pytest -q --durations=15

test-slow: install
	$(BIN)/pip install -q -e '.[ray]'
	$(BIN)/python -m pytest -q -m slow

# The Milvus cases of the index contract suites, slow ones (server restarts) included, against
# a real Milvus server that scripts/start-milvus.sh starts (PyPI's milvus in its own venv,
# /tmp/milvus-venv; root, for its private network namespace) and this target stops.
test-milvus-server: install
	url=$$(bash scripts/start-milvus.sh) && trap 'bash scripts/start-milvus.sh --stop' EXIT && \
	FACEINDEX_TEST_MILVUS_URI=$$url FACEINDEX_TEST_MILVUS_CONTROL="bash $(CURDIR)/scripts/start-milvus.sh" \
	$(BIN)/python -m pytest -q -m contract -k milvus \
		tests/contract/test_index_contract.py tests/contract/test_index_follows_catalog_contract.py

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Peers for the benchmarks: face_recognition (no deps: it would pull a second dlib) on our dlib,
# and a second venv where it runs on the dlib-bin wheel, as a plain pip user would get it.
# face_recognition_models 0.3.0 imports pkg_resources, which setuptools 81 dropped, so each
# interpreter that imports it keeps setuptools<81 (faceindex reads the model files by path
# and does not import it). The last two lines fail here, not in the benchmark, if it breaks.
bench-deps: install
	$(BIN)/pip install -q --no-deps face_recognition==1.3.0
	$(BIN)/pip install -q 'setuptools<81'
	$(PYTHON) -m venv .venv-peer
	.venv-peer/bin/pip install -q 'setuptools<81' dlib-bin==20.0.1.post1 \
		face_recognition_models==0.3.0 pillow numpy
	.venv-peer/bin/pip install -q --no-deps face_recognition==1.3.0
	$(BIN)/python -c 'import face_recognition_models, face_recognition'
	.venv-peer/bin/python -c 'import face_recognition_models, face_recognition'

# BENCH_ARGS: e.g. BENCH_ARGS="--sets knn" for a quick run on 12 photos.
BENCH_ARGS ?=
bench-ingest: bench-deps
	$(BIN)/python benchmarks/ingest.py --peer-python .venv-peer/bin/python $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-peer demo-home .pytest_cache
