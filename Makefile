# servewatch: `make demo` runs the whole loop on this machine; `make test` runs every test.
# Both set themselves up: a virtual environment in .venv, and Debian packages when run as root
# (scripts/system-deps.sh). The demo installs only servewatch[demo] and, as root, Prometheus and Alertmanager
# (it shows pages with them, and runs without them); the tests install the framework extras, Java, and
# Debian's python3.11 for .venv-triton (PyTriton).

PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TRITON_VENV ?= .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
# torch 2.13.0 (CPU) is the build this machine keeps on disk; TorchServe only needs some torch.
TORCH := torch==2.13.0

.PHONY: demo test test-fast typecheck bench system system-demo venv venv-triton clean

DEMO_OUT := demo-out
DEMO_STAMP := $(VENV)/.installed-demo

# The demo needs only servewatch[demo] (FastAPI, uvicorn, matplotlib), not the framework extras of the tests.
demo: system-demo $(DEMO_STAMP)
	$(VENV)/bin/servewatch demo --out $(DEMO_OUT)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[demo]'
	touch $@

test: system $(STAMP) $(TRITON_STAMP) typecheck
	$(VENV)/bin/pytest
	@if [ -f $(TRITON_STAMP) ]; then \
	  $(TRITON_VENV)/bin/pytest tests/instrumentation/triton tests/integration/test_triton_pytriton.py tests/integration/test_triton_server.py; \
	else echo "no $(TRITON_VENV): the Triton tests were skipped"; fi

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not integration and not slow"

# mypy on the whole package as it installs: the source sits in several folders (pyproject's package-dir), so
# scripts/package_tree.py lays it out as symlinks under build/typecheck and mypy runs there, with the
# [tool.mypy] settings of pyproject.toml (`make venv` first; `make test` does).
TYPECHECK := build/typecheck
typecheck:
	$(VENV)/bin/python scripts/package_tree.py $(TYPECHECK)
	cd $(TYPECHECK) && $(abspath $(VENV))/bin/mypy --config-file $(CURDIR)/pyproject.toml \
	  --cache-dir $(CURDIR)/build/.mypy_cache -p servewatch

# Each benchmark prints its ratios against a baseline measured in the same run (bench/_*.py and
# bench/*_harness.py are helpers, not benchmarks).
bench: system $(STAMP) $(TRITON_STAMP)
	@for b in $$(ls bench/*.py | grep -v -e '/_' -e '_harness.py'); do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

system:
	@sh scripts/system-deps.sh

system-demo:
	@sh scripts/system-deps.sh demo

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,torchserve,ray,gpu,report]' $(TORCH)
	touch $@

venv-triton: $(TRITON_STAMP)
$(TRITON_STAMP): pyproject.toml
	@if [ -x /usr/bin/python3.11 ]; then \
	  /usr/bin/python3.11 -m venv $(TRITON_VENV) && \
	  $(TRITON_VENV)/bin/pip install -q --upgrade pip && \
	  $(TRITON_VENV)/bin/pip install -q -e '.[triton,dev]' && touch $@; \
	else echo "no /usr/bin/python3.11: the PyTriton tests will skip"; fi

clean:
	rm -rf $(VENV) $(TRITON_VENV) build dist *.egg-info .pytest_cache
