# `make test` and `make demo` are the two commands of README.md; each installs what it
# needs on a fresh Debian-like machine (venv, redis-server, the Go-built control plane).

VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# Go lives here on the project's machines; a PATH without it must still find it.
export PATH := $(PATH):/usr/local/go/bin
PY_DIRS := $(wildcard operator tests bench)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test demo dev lint unit integration test-autoscale bench-autoscale crds monitoring \
	test-alerts openapi chart-schema manifests controlplane redis-server clean fuzz

test: lint controlplane redis-server
	$(BIN)/pytest

demo: $(BIN)/.installed controlplane redis-server
	$(BIN)/imagegen demo

dev: $(BIN)/.installed controlplane redis-server
	$(BIN)/imagegen dev

lint: $(BIN)/.installed
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

integration: $(BIN)/.installed controlplane redis-server
	$(BIN)/pytest tests/integration

# The real HPA controller scaling pools on simulated CPU; `make test` runs these too.
test-autoscale: $(BIN)/.installed controlplane redis-server
	$(BIN)/pytest -m autoscale tests/integration

# Two HPAs, the Tenant's band and the default tolerance, under one noisy load; writes
# bench/results/autoscale.json and .png, exits 1 when a target is missed.
bench-autoscale: $(BIN)/.installed controlplane
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/autoscale.py

# The abuse suite at the API's limits with many new generated examples (`make test` runs
# a few, the same each time).
fuzz: $(BIN)/.installed controlplane redis-server
	FUZZ_EXAMPLES=200 FUZZ_RANDOM=1 $(BIN)/pytest tests/integration/test_limits_fuzz.py

crds: $(BIN)/.installed
	$(BIN)/imagegen crds --output-dir crds

monitoring: $(BIN)/.installed
	$(BIN)/imagegen monitoring --output-dir manifests/monitoring

# promtool alone: the alert rules' unit tests and checks (no cluster needed).
test-alerts: $(BIN)/.installed controlplane
	$(BIN)/pytest -m alerts

# docs/openapi.json is committed; a unit test fails when it is stale.
openapi: $(BIN)/.installed
	$(BIN)/imagegen openapi --output docs/openapi.json

# The chart's values.schema.json comes from the same models as the CRDs.
chart-schema: $(BIN)/.installed
	$(BIN)/imagegen chart-schema --output charts/imagegen/values.schema.json

# manifests/ is rendered from the chart by the helm the control-plane build makes.
manifests: crds chart-schema controlplane
	$(BIN)/imagegen manifests --chart charts/imagegen --output-dir manifests

controlplane: $(BIN)/.installed
	$(BIN)/imagegen controlplane

redis-server:
	@command -v redis-server >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
