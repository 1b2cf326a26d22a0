# mcp-router has two user-facing commands:
#   make demo   set everything up in .venv, then route calls through a real MCP client (no key, no network)
#   make test   the same set-up, then ruff and the test suite (it also needs Debian's searx for the real
#               SearXNG test; .ci/system-deps installs missing system packages when run as root)
#
# Set-up order matters: torch is installed pinned first (its local CPU wheel; an unpinned torch pulls
# several GB of CUDA packages), then llama-cpp-python is compiled with portable CPU flags (the default
# native build segfaults on CPUs whose AVX-512/AMX state the VM does not enable), then the project.
# Of llama-cpp-python 0.3.36's CMake options, LLAVA_BUILD=OFF drops the multimodal `mtmd` library
# (imported only by its vision chat handlers); llama.cpp's examples, tests, tools and server binaries
# are already off when it is built as a subproject, and its `common` library is forced on.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test

demo: $(STAMP)
	$(BIN)/mcp-router demo

test: $(STAMP)
	bash .ci/system-deps --with-searx
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

$(STAMP): pyproject.toml
	bash .ci/system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(BIN)/python -m pip install --quiet "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[local,dev]"
	touch $@
