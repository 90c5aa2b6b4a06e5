# One target per stage. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup setup-system setup-python run test test-fast bench lint clean

setup: setup-system setup-python

# firejail (the sandbox), Slurm + munge (the local single-node cluster of the tests) when missing.
setup-system:
	bash slurm/install-system-packages.sh

# torch first and pinned: a bare `torch` requirement would pull several GB of CUDA wheels.
setup-python:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==$(TORCH_VERSION)"
	$(PIP) install -q -e ".[test]"

# The main job: the embedded default (small local model, demo benchmark, local launcher, W&B offline).
run: setup
	$(PYTHON) launch.py

test: setup
	$(PYTHON) -m pytest -q tests

test-fast: setup-python
	$(PYTHON) -m pytest -q -m "not slow" tests

bench: setup
	$(PYTHON) -m editsweep bench sandbox

clean:
	rm -rf .pytest_cache build *.egg-info outputs multirun
