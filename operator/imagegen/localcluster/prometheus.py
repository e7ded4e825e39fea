"""A real Prometheus for the local stack and the tests, scraping the operator and workers.

Targets are file-based service discovery: `set_targets` rewrites one JSON file per job and
Prometheus picks the change up at once (it watches the files), so workers started later
are scraped too. Built from its Go module like the control plane (localcluster.build).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from imagegen.localcluster import process

SCRAPE_SECONDS = 2
"""Scrape and rule-evaluation interval: seconds, so a test sees a batch's whole story;
not one, so a scrape of a busy operator on a loaded machine has time to answer."""
REQUEST_SECONDS = 10.0
"""Bound on one HTTP API call."""
START_SECONDS = 60.0

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "images per second, by tenant and region",
        "sum by (tenant, region) (rate(imagegen_worker_images_generated_total[1m]))",
    ),
    (
        "items queued per tenant, lane and region",
        "sum by (tenant, lane, region) (imagegen_queue_depth)",
    ),
    (
        "worker replicas against the HPA bounds",
        "imagegen_pool_replicas or imagegen_pool_max_replicas",
    ),
)
"""Three queries worth running against the local stack, with what each shows."""


class PrometheusError(RuntimeError):
    """Prometheus did not start, or its API answered with an error."""


@dataclasses.dataclass(kw_only=True)
class LocalPrometheus:
    """A running Prometheus and its target files."""

    child: process.ManagedProcess
    port: int
    workdir: pathlib.Path

    @property
    def url(self) -> str:
        """Its HTTP root: the UI and /api/v1."""
        return f"http://127.0.0.1:{self.port}"

    def set_targets(self, *, job: str, targets: Sequence[str]) -> None:
        """Scrape these host:port targets as `job` from now on (replaces the job's list)."""
        path = self.workdir / "targets" / f"{job}.json"
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps([{"targets": list(targets), "labels": {"job": job}}]))
        # A rename, so Prometheus never reads half a file.
        staging.rename(path)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path> with params; the `data` of a success, else PrometheusError."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as reply:  # noqa: S310
                body = json.loads(reply.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        except OSError as error:
            raise PrometheusError(f"{url}: {error}") from error
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one sample) of a PromQL expression, now."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = (
            data["result"]
            if data["resultType"] == "vector"
            else [{"metric": {}, "value": data["result"]}]
        )
        return result

    def stop(self) -> None:
        """Stop Prometheus and reap it."""
        self.child.stop()


def config(*, workdir: pathlib.Path, rule_files: Sequence[pathlib.Path] = ()) -> dict[str, Any]:
    """The configuration: every JSON file under workdir/targets is a job's targets."""
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
            "scrape_timeout": f"{SCRAPE_SECONDS}s",
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "imagegen",
                "file_sd_configs": [
                    {"files": [str(workdir / "targets" / "*.json")], "refresh_interval": "5s"}
                ],
            }
        ],
    }


def start(
    *,
    binary: pathlib.Path,
    workdir: pathlib.Path,
    targets: Mapping[str, Sequence[str]] | None = None,
    rule_files: Sequence[pathlib.Path] = (),
) -> LocalPrometheus:
    """Start Prometheus on a free loopback port, scraping `targets` (job -> host:port
    list) every second and evaluating `rule_files`; wait until it is ready."""
    (workdir / "targets").mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config(workdir=workdir, rule_files=rule_files)))
    port = process.free_port()
    child = process.spawn(
        name="prometheus",
        argv=[
            str(binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log_path=workdir / "prometheus.log",
    )
    running = LocalPrometheus(child=child, port=port, workdir=workdir)
    for job, addresses in (targets or {}).items():
        running.set_targets(job=job, targets=addresses)
    try:
        _wait_ready(running)
    except BaseException:
        child.stop()
        raise
    return running


def start_for_stack(
    *,
    binary: pathlib.Path,
    workdir: pathlib.Path,
    operator: str,
    workers: Sequence[str],
    rule_files: Sequence[pathlib.Path] = (),
) -> tuple[LocalPrometheus, tuple[tuple[str, str], ...]]:
    """Prometheus for a local stack: the operator's and the workers' /metrics
    (host:port each); returns it with DEMO_QUERIES to print."""
    running = start(
        binary=binary,
        workdir=workdir,
        targets={"imagegen-operator": [operator], "imagegen-worker": list(workers)},
        rule_files=rule_files,
    )
    return running, DEMO_QUERIES


def _wait_ready(running: LocalPrometheus) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if not running.child.running():
            raise PrometheusError(f"prometheus exited:\n{running.child.log_tail()}")
        try:
            with urllib.request.urlopen(f"{running.url}/-/ready", timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise PrometheusError(f"prometheus not ready within {START_SECONDS}s")
