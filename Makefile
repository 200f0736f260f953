# The two entry points a new machine needs (see README):
#   make quick   the main job: quick suite on the embedded digits data, both backends
#   make test    lint, then the project's tests plus the smoke tier of each suite module in suites/
# Both create .venv and install the project from pyproject.toml first.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: quick test lint install fashion-mnist chromium benchmark benchmark-scheduling benchmark-dropout clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[optuna,dev,report,mlflow]'
	touch $(STAMP)

install: $(STAMP)

quick: $(STAMP)
	$(BIN)/xfbench run --suite quick --backend torch --backend tensorflow

# Real Fashion-MNIST comes from Debian's dataset-fashion-mnist package when we may install it (root with apt, as in
# CI: there a failed install stops make test, so CI never passes with those tests skipped); otherwise the tests
# that need it are skipped with the reason.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
	  && echo "Fashion-MNIST: installed dataset-fashion-mnist" || \
	  { echo "Fashion-MNIST: apt-get could not install dataset-fashion-mnist; install it, or run as a user" \
	         "who may not (its tests are then skipped)" >&2; exit 1; }; \
	else echo "Fashion-MNIST: not installed, and installing needs root and apt-get; its tests will be skipped"; fi

# The report's browser test opens report.html in Debian's headless Chromium when we may install it (root with apt,
# as in CI, where a failed install stops make test); otherwise that test is skipped with the reason.
chromium:
	@if command -v chromium >/dev/null; then echo "Chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
	  && echo "Chromium: installed chromium" || \
	  { echo "Chromium: apt-get could not install chromium; install it, or run as a user who may not" \
	         "(its test is then skipped)" >&2; exit 1; }; \
	else echo "Chromium: not installed, and installing needs root and apt-get; the browser test will be skipped"; fi

# results/ci (and its shared-backbone cache) starts empty: every CI run trains and measures with this code. Its
# report.html is left out (seconds of plots no check reads; `xfbench report results/ci/RUN` draws it).
test: $(STAMP) fashion-mnist chromium lint
	rm -rf results/ci
	$(BIN)/python -m pytest tests suites --scale smoke --results-dir results/ci --durations=25 -rs --no-xfbench-report

# Formatting, lint and types: ruff (line length 120) on everything, mypy on harness/, backends/, benchmarks/.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

benchmark: $(STAMP) fashion-mnist
	$(BIN)/python benchmarks/harness_overhead.py --workload both

# Ray Tune's per-trial overhead (100 trivial trials per backend, warm and fresh workers), a warm worker's memory over
# 200 cnn_small trials (about 3 minutes here), warm-up by worker_trials_before (about 1.5), the driver's start-up and
# the quick suite's wall time; the rest about 10 minutes here; `--part` picks some.
benchmark-scheduling: $(STAMP)
	$(BIN)/python benchmarks/scheduling.py

# Shared dropout masks against each framework's own dropout, per backend; about half a minute here (2026-12-07).
benchmark-dropout: $(STAMP)
	$(BIN)/python benchmarks/dropout_masks.py

clean:
	rm -rf $(VENV) results/ci results/_ray
