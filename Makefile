# Two commands do all the set-up on a fresh Linux machine with Python 3.11+:
#   make run    create .venv if missing, install, open the workbench with the default preset
#   make test   same set-up, then ruff (lint and format check) and the test suite (what CI runs)
#
# torch is pinned to one release. Where a local CPU wheel of that release is on pip's path (our
# dev and CI machines) pip takes it in seconds; elsewhere PyPI serves the same release as its
# standard Linux build, which includes CUDA. Override with `make TORCH_SPEC=... ` if needed.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PRESET ?= presets/baby-gpt.yaml
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml Makefile
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m workbench --preset $(PRESET)

test: lint
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

lint: $(STAMP)
	$(VENV)/bin/ruff check engine workbench tests benchmarks
	$(VENV)/bin/ruff format --check engine workbench tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/train_loop.py

clean:
	rm -rf $(VENV) .pytest_cache
