"""Every Prometheus metric of imagegen, defined once, and what is built from them.

Modules, imported as modules (`from imagegen.metrics import operator`):

- `labels`: the bounded label names a metric may carry, and the check that none other is.
- `operator`, `worker`, `gateway`: one registry per process with its metrics. A process
  serves its own registry only, so a worker's scrape never lists operator series.
- `books`: collectors that turn what the operator knows (batches, queue samples) into
  gauges at scrape time, so a scrape never reads a half-updated set.
- `registries`: a registry per process, with the client's process metrics.
- `serve`: /metrics over HTTP: the operator's server (its `--metrics` URL), and the
  handler the worker adds to its probe server.
- `alerts`, `dashboard`, `files`: the alert rules and the Grafana dashboard, each from one
  Python source, rendered to the files under manifests/monitoring/.

Labels are bounded: tenant, region, tier, provider, phase, route, method, code, reason, kind,
lane.
Never a batch id, item id, prompt, key or URL.
"""

from prometheus_client import disable_created_metrics

# A `_created` series beside every counter and histogram would add a third to the
# operator's series at 200 tenants and tell an SRE nothing the counter's reset does not.
disable_created_metrics()  # type: ignore[no-untyped-call]
