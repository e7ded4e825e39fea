# `make test` and `make demo` are the two commands of README.md; each installs what it
# needs on a fresh Debian-like machine (venv, redis-server, the Go-built control plane).

VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# The versions of every Python package the tests last passed with (see the file's header).
CONSTRAINTS := operator/constraints.txt
# Go lives here on the project's machines; a PATH without it must still find it.
export PATH := $(PATH):/usr/local/go/bin
PY_DIRS := $(wildcard operator tests bench)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test demo dev lint unit integration test-autoscale test-chaos bench-autoscale bench-sla crds monitoring \
	test-alerts openapi chart-schema manifests controlplane redis-server chromium cc client-examples clean fuzz

test: lint controlplane redis-server chromium client-examples cc
	$(BIN)/pytest

# demo and dev build (once, cached) only the control-plane parts they start: no helm, no
# Argo CD, which only some tests use.
demo: $(BIN)/.installed redis-server
	$(BIN)/imagegen demo

dev: $(BIN)/.installed redis-server
	$(BIN)/imagegen dev

lint: $(BIN)/.installed
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

integration: $(BIN)/.installed controlplane redis-server chromium client-examples cc
	$(BIN)/pytest tests/integration

# The real HPA controller scaling pools on simulated CPU; `make test` runs these too.
test-autoscale: $(BIN)/.installed controlplane redis-server
	$(BIN)/pytest -m autoscale tests/integration

# The chaos suite in its full form: a 100-image batch through each fault, outages as long
# as the issue names them (`make test` runs the short form: 40 items, shorter outages);
# figures in test-artifacts/chaos-results.jsonl, the README's table.
test-chaos: $(BIN)/.installed controlplane redis-server
	IMAGEGEN_CHAOS=full $(BIN)/pytest -m chaos tests/integration

# Two HPAs, the Tenant's band and the default tolerance, under one noisy load; writes
# bench/results/autoscale.json and .png, exits 1 when a target is missed.
bench-autoscale: $(BIN)/.installed controlplane
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[bench]'
	$(BIN)/python bench/autoscale.py

# The premium SLA under a standard flood: three scenarios, each measured for MINUTES after
# its warm-up (about an hour in all at 15; MINUTES=2 for a smoke run of about 20 minutes);
# bench/results/sla.json and .png.
MINUTES ?= 15
bench-sla: $(BIN)/.installed controlplane
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[bench]'
	$(BIN)/python bench/sla.py --minutes $(MINUTES)

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

# The Redis Cluster fixture needs Redis 7 or later (CLUSTER SHARDS) and redis-cli (it
# forms the cluster); Debian's redis-server package brings both (redis-tools).
REDIS_MIN_MAJOR := 7
redis-server:
	@{ command -v redis-server && command -v redis-cli; } >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			redis-server redis-tools >/dev/null; }
	@version=$$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p'); \
	major=$${version%%.*}; \
	if [ -z "$$major" ] || [ "$$major" -lt $(REDIS_MIN_MAJOR) ]; then \
		echo "redis-server $${version:-of unknown version} at $$(command -v redis-server):" \
			"the tests need Redis $(REDIS_MIN_MAJOR) or later (CLUSTER SHARDS);" \
			"install a newer one (Debian 12 and later ship 7.x)" >&2; \
		exit 1; \
	fi
	@command -v redis-cli >/dev/null || { \
		echo "redis-cli is missing (it forms the test Redis Cluster): apt-get install redis-tools" >&2; \
		exit 1; }

# A C compiler: test_gateway_clock_skew.py builds tests/integration/fakeclock.c, which
# runs a gateway replica with its wall clock off.
cc:
	@command -v cc >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }

# The batch UI's browser tests drive Debian's chromium (Playwright's own browser download
# is not used: it cannot be fetched on the project's machines).
chromium:
	@command -v chromium >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The TypeScript examples of docs/integration.md: npm packages from the lock file, the
# client types generated from docs/openapi.json (openapi-typescript) and the programs
# compiled by tsc, which is the type check; the tests then run each against a gateway.
TS_EXAMPLES := examples/clients/typescript
client-examples: $(TS_EXAMPLES)/node_modules/.package-lock.json
	cd $(TS_EXAMPLES) && npm run --silent build

$(TS_EXAMPLES)/node_modules/.package-lock.json: $(TS_EXAMPLES)/package.json $(TS_EXAMPLES)/package-lock.json
	@command -v npm >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd $(TS_EXAMPLES) && npm ci --no-audit --no-fund --silent

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
