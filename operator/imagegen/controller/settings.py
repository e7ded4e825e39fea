"""Every setting of the operator process in one place, with the reason for each default."""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import kopf

from imagegen.api import meta
from imagegen.controller import bookkeeping
from imagegen.metrics import serve

FINALIZER = f"{meta.GROUP}/finalizer"
COMPONENT = "imagegen-operator"
"""The component named on every Event the operator posts (Kopf's and its own)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Bounds on every call the operator makes to the management apiserver."""

    request_seconds: float = 30.0
    """One API request, watches excluded. Kopf's default is 5 minutes, far too long to
    notice a hung apiserver."""
    connect_seconds: float = 10.0
    """TCP and TLS connect."""
    watch_server_seconds: int = 300
    """Asked of the server: end each watch after this, so watches are renewed regularly.
    Whole seconds: the apiserver refuses a fractional timeoutSeconds."""
    watch_client_seconds: float = 330.0
    """Our own bound on a watch; a little above the server's so the server ends it first."""
    watch_inactivity_seconds: float = 70.0
    """A watch that stays silent this long is restarted (a half-open connection): Kopf's
    and the operator's own (imagegen.kube.watching). Both ask for bookmarks, which the
    apiserver sends about every minute, so a live watch is never this silent."""


DEFAULT_METRICS = serve.Endpoint(
    host="0.0.0.0",  # noqa: S104 (Prometheus scrapes the pod's IP)
    port=9090,
    path="/metrics",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorOptions:
    """How the operator process runs (the command line); what it manages is in the
    configuration file, api.operatorconfig."""

    kubeconfig: pathlib.Path | None = None
    """Kubeconfig of the management cluster; None means in-cluster service account."""
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """Kopf's liveness probe; it answers only while the operator's tasks are alive."""
    metrics_endpoint: serve.Endpoint | None = DEFAULT_METRICS
    """Where /metrics is served; None serves nothing."""
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    event_level: int = logging.WARNING
    """Kopf posts handler log records of this level and above as Events on the object.
    Handlers post the meaningful Events themselves; Kopf's per-handler INFO messages
    would add an Event on every drift check."""


def kopf_settings(*, options: OperatorOptions) -> kopf.OperatorSettings:
    """Kopf settings for imagegen.

    Kopf's bookkeeping (handler progress, a digest of the last-handled spec) goes into
    small annotations under our group, never into the user-visible status (see
    controller.bookkeeping). The operator runs standalone: one replica with a Recreate
    strategy. Kopf's peering pauses operators of equal priority instead of electing a
    leader, so a second replica would add no availability; a crashed pod is replaced within
    seconds and every handler is level-triggered and idempotent.
    """
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = bookkeeping.progress_storage()
    settings.persistence.diffbase_storage = bookkeeping.diffbase_storage()
    settings.peering.standalone = True
    settings.peering.clusterwide = True
    settings.networking.request_timeout = options.timeouts.request_seconds
    settings.networking.connect_timeout = options.timeouts.connect_seconds
    settings.watching.server_timeout = options.timeouts.watch_server_seconds
    settings.watching.client_timeout = options.timeouts.watch_client_seconds
    settings.watching.connect_timeout = options.timeouts.connect_seconds
    settings.watching.inactivity_timeout = options.timeouts.watch_inactivity_seconds
    settings.posting.level = options.event_level
    settings.posting.reporting_component = COMPONENT
    return settings
