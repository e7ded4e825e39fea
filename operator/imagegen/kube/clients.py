"""The one place Kubernetes clients are built.

Every client has explicit timeouts (never the library default), our field manager for
server-side apply, and ignores the environment's proxy settings: a kubeconfig names its
server, and an ambient HTTPS_PROXY must not reroute it. The connection pool is sized on
purpose: the gateway holds its watches on a client of their own, so long-lived streams
can never take the connections its requests need.

A client-side rate limit is where it matters, around the regional clients
(regions.RegionClient.call): one busy region must not starve the others' reconciles.
"""

from __future__ import annotations

import pathlib
import ssl

import httpx2
import lightkube
from lightkube.config import client_adapter
from lightkube.config import kubeconfig as lightkube_config

from imagegen.api import meta

REQUEST_SECONDS = 15.0
"""One API request, watches excluded (their reads are bounded by the watch helper)."""
CONNECT_SECONDS = 5.0
"""TCP and TLS connect."""
MAX_CONNECTIONS = 100
"""httpx's own default, named: requests of one process at once."""
_KEEPALIVE_CONNECTIONS = 20

Source = pathlib.Path | lightkube.KubeConfig | None
"""A kubeconfig file (its current context), a parsed KubeConfig, or None: the pod's
ServiceAccount (in-cluster)."""


def async_client(
    *,
    kubeconfig: Source,
    request_seconds: float = REQUEST_SECONDS,
    connect_seconds: float = CONNECT_SECONDS,
    field_manager: str = meta.FIELD_MANAGER,
    max_connections: int = MAX_CONNECTIONS,
) -> lightkube.AsyncClient:
    """An asyncio client with at most `max_connections` open to the apiserver; a request
    that finds them all busy waits up to `request_seconds` for one."""
    config = _single(kubeconfig)
    return lightkube.AsyncClient(
        config=config,
        timeout=httpx2.Timeout(request_seconds, connect=connect_seconds),
        field_manager=field_manager,
        trust_env=False,
        transport=httpx2.AsyncHTTPTransport(
            verify=_tls(config), trust_env=False, limits=_limits(max_connections)
        ),
    )


def sync_client(
    *,
    kubeconfig: Source,
    request_seconds: float = REQUEST_SECONDS,
    connect_seconds: float = CONNECT_SECONDS,
    field_manager: str = meta.FIELD_MANAGER,
) -> lightkube.Client:
    """The synchronous twin of async_client (command line, local stack, tests)."""
    config = _single(kubeconfig)
    return lightkube.Client(
        config=config,
        timeout=httpx2.Timeout(request_seconds, connect=connect_seconds),
        field_manager=field_manager,
        trust_env=False,
        transport=httpx2.HTTPTransport(
            verify=_tls(config), trust_env=False, limits=_limits(MAX_CONNECTIONS)
        ),
    )


def _single(source: Source) -> lightkube_config.SingleConfig:
    if source is None:
        parsed = lightkube.KubeConfig.from_service_account()
    elif isinstance(source, lightkube.KubeConfig):
        parsed = source
    else:
        parsed = lightkube.KubeConfig.from_file(source)
    config = parsed.get()
    if config is None:
        raise ValueError(f"{source}: the kubeconfig has no current context")
    return config


def _tls(config: lightkube_config.SingleConfig) -> ssl.SSLContext:
    # A transport of our own is how the pool gets its size (lightkube passes no limits to
    # httpx); it then carries the TLS settings too, built from the kubeconfig as lightkube
    # builds them for its own transport.
    if config.user is None:
        raise ValueError(f"{config.context_name}: the kubeconfig context names no user")
    tls: ssl.SSLContext = client_adapter.verify_cluster(
        config.cluster, config.user, config.abs_file, trust_env=False
    )
    return tls


def _limits(max_connections: int) -> httpx2.Limits:
    return httpx2.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(max_connections, _KEEPALIVE_CONNECTIONS),
    )
