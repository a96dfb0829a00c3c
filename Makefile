# drol-diag: `make demo` sets up .venv and runs the main job; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.installed-test

.PHONY: demo test lint test-tools bench clean-runs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# The demo: DROL's dynamic routing against a frozen assignment (static-routing) on arc-2d, where the data lie
# along a curve whose best end is rare (the geometry dynamic routing is for; docs/findings.md), 5 seeds each
# (the fewest the report reads a verdict from: docs/reading-the-report.md).
DEMO_RUN := --task arc-2d --k 4 --seeds 0-4 --bc-coef 10 --steps 4000 --batch-size 64 --lr 1e-3 \
	--hidden 64,64 --log-interval 500 --eval-interval 1000 --out runs/demo --force
demo: $(INSTALLED)
	$(BIN)/drol-diag run --ablation dynamic $(DEMO_RUN)
	$(BIN)/drol-diag run --ablation static-routing $(DEMO_RUN)
	$(BIN)/drol-diag report runs/demo

# One pytest worker per core (at most 4); --dist loadfile keeps each file's tests, and its
# module-scoped fixtures, in one worker, in file order; the files go to the workers longest first
# (tests/conftest.py orders them; --no-loadscope-reorder keeps that order); the 15 slowest tests are listed.
test: $(TEST_INSTALLED) test-tools
	$(BIN)/python -m pytest -q --numprocesses=auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder --durations=15

# ruff, configured in pyproject.toml ([tool.ruff]); .ci/run runs it beside the tests.
lint: $(TEST_INSTALLED)
	$(BIN)/ruff check .

# The report tests open the HTML in headless Chromium and read the PDF back with poppler-utils
# (pdftoppm, pdfinfo, pdftotext); install them from Debian's registry when either is missing.
test-tools:
	@command -v chromium >/dev/null && command -v pdftoppm >/dev/null || { \
		echo "make: installing chromium and poppler-utils with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; }

bench: $(INSTALLED)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/ablations.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/datagen.py
	$(BIN)/python benchmarks/evaluation.py
	$(BIN)/python benchmarks/gpu.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/density.py

clean-runs:
	rm -rf runs/
