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

## test: layers, lint, types, then the whole test suite (unit, service, local end-to-end;
## cluster e2e skips without KUBECONFIG)
test: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check kubenas suggestion controller trainer
	$(VENV)/bin/mypy kubenas suggestion controller trainer
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check kubenas suggestion controller trainer
	$(VENV)/bin/mypy kubenas suggestion controller trainer

proto: install
	$(PY) scripts/gen_proto.py

bench: install
	$(PY) bench/suggest_latency.py

clean:
	rm -rf $(VENV) runs .pytest_cache
