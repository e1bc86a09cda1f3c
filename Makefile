# weighttie — set up and run on a fresh machine. Needs python3 (3.11+) and make.
#   make demo   venv + install + build the bundled siamese example + report it
#   make test   venv + install (package, one TensorFlow, test extras) + the test suite
#   make budgets  the time and memory bounds (pytest -m budget), which CI runs too
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One TensorFlow distribution only (tensorflow-cpu). tf_keras writes the Keras 2
# test files; it declares a dependency on the `tensorflow` distribution, so it is
# installed with --no-deps and pinned to the same release (docs/install.md).
TF_VERSION := 2.21.*

.PHONY: demo test budgets lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-e ".[tensorflow-cpu,test,lint]" "tensorflow-cpu==$(TF_VERSION)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		"tf_keras==$(TF_VERSION)"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build
	$(BIN)/python examples/siamese.py build/siamese.keras
	$(BIN)/weighttie report build/siamese.keras

test: $(STAMP)
	$(BIN)/python -m pytest

# Time and memory bounds (machine-dependent, so not part of `make test`); CI runs them.
budgets: $(STAMP)
	$(BIN)/python -m pytest -m budget

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
