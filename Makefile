# Two entry points a new user needs: `make demo` and `make test`. Each installs what it
# needs into ./.venv first (idempotent), so both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint bench clean proto

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch is installed first and pinned: 2.13.0 is the CPU wheel; any other version pulls CUDA.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## demo: run the ENAS example experiment on the digits dataset on this machine
# A fresh work directory each time: a previous demo's is replaced, not resumed.
demo: install
	rm -rf runs/enas-digits
	$(VENV)/bin/kubenas run examples/enas-digits.yaml --workdir runs/enas-digits

# pytest-xdist workers: a native crash (abort, segfault) fails the one test it ran instead of
# the whole run. Two were faster than four here (bench/RESULTS.md). Plain `load` scheduling:
# loadgroup/loadscope re-run a crashed test on every replacement worker.
TEST_WORKERS ?= 2
PACKAGES := kubenas kubenas_cli kubenas_bench suggestion controller trainer dashboard
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS)
# The torch and oneDNN kernels of an x86 CPU without AVX-512, selectable on any x86 CPU.
AVX2   := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

## test: layers, lint, types, then the whole test suite (unit, service, local end-to-end;
## cluster e2e skips without KUBECONFIG), then the trainer tests again on AVX2 kernels
test: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check $(PACKAGES)
	$(VENV)/bin/mypy $(PACKAGES)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir .site-check
	$(PYTEST)
	$(AVX2) $(PYTEST) tests/trainer

lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check $(PACKAGES)
	$(VENV)/bin/mypy $(PACKAGES)

proto: install
	$(PY) scripts/gen_proto.py

bench: install
	$(PY) bench/suggest_latency.py

clean:
	rm -rf $(VENV) runs .pytest_cache site .site-check
