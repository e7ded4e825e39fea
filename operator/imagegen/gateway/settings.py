"""Every setting of the gateway process in one place, with the reason for each default."""

from __future__ import annotations

import pathlib
from typing import Annotated

import pydantic
import yaml

from imagegen.api import meta


class Timeouts(pydantic.BaseModel):
    """Bounds on every call the gateway makes, and on what it waits for from clients."""

    model_config = pydantic.ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kube_request_seconds: Annotated[float, pydantic.Field(gt=0)] = 15.0
    """One apiserver request (watches excluded): a client waits for it, so keep it short."""
    kube_connect_seconds: Annotated[float, pydantic.Field(gt=0)] = 5.0
    """TCP and TLS connect to the apiserver."""
    watch_server_seconds: Annotated[int, pydantic.Field(ge=1)] = 290
    """Asked of the apiserver: end each watch after this, so watches are renewed."""
    redis_seconds: Annotated[float, pydantic.Field(gt=0)] = 2.0
    """One Redis command: rate limits and idempotency sit on every request's path."""
    body_read_seconds: Annotated[float, pydantic.Field(gt=0)] = 30.0
    """Reading a request body; a client that trickles it is cut off (408)."""
    webhook_check_seconds: Annotated[float, pydantic.Field(gt=0)] = 5.0
    """Resolving a webhook host to check it at submit time."""


class GatewaySettings(pydantic.BaseModel):
    """How the gateway runs; loaded from a YAML file and the command line."""

    model_config = pydantic.ConfigDict(extra="forbid", use_attribute_docstrings=True)

    host: str = "0.0.0.0"  # noqa: S104 (a server in a pod listens on every interface)
    """Address to listen on."""
    port: Annotated[int, pydantic.Field(ge=0, le=65535)] = 8000
    """Port to listen on; 0 picks a free one (tests)."""
    kubeconfig: pathlib.Path | None = None
    """Kubeconfig of the management cluster; None means the in-cluster service account."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The management Redis: rate limits, idempotency records, the webhook outbox.
    Never logged: it may carry a password."""
    operator_namespace: meta.DnsLabel = "imagegen-system"
    """Where the operator publishes the API-key digest index ConfigMaps."""
    webhook_allowlist: list[str] = pydantic.Field(default_factory=list)
    """Hosts or addresses webhooks may reach although they are private (internal receivers)."""
    webhooks_enabled: bool = True
    """Run webhook delivery (the outbox producer and dispatcher) in this process."""
    max_body_bytes: Annotated[int, pydantic.Field(ge=1024)] = 1_048_576
    """Largest request body. The biggest valid batch (30,000 prompt characters, each at
    most 12 bytes as a JSON escape pair, 16 metadata entries) fits in under 600 KB of JSON;
    anything bigger than this is refused with 413 while it is read."""
    images_dir: pathlib.Path | None = None
    """Where workers store images (a shared volume); images are served from here only.
    None: GET .../images/{item} answers 501."""
    page_size: Annotated[int, pydantic.Field(ge=1, le=500)] = 50
    """Batches per page of GET /api/v1/batches when the client asks for no limit."""
    max_streams_per_tenant: Annotated[int, pydantic.Field(ge=1)] = 100
    """Open SSE and WebSocket streams one tenant may hold; past it, 429 with Retry-After.
    A hundred viewers of a tenant's live batches; more is a client that leaks streams."""
    max_streams: Annotated[int, pydantic.Field(ge=1)] = 2000
    """Open streams in one gateway process, all tenants together: each holds a socket and
    a task (their watches are shared per namespace), so this bounds descriptors and memory."""
    timeouts: Timeouts = pydantic.Field(default_factory=Timeouts)


def load(path: pathlib.Path | None, **overrides: object) -> GatewaySettings:
    """Settings from a YAML file (or the defaults), with non-None overrides on top."""
    data: dict[str, object] = {}
    if path is not None:
        with path.open() as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        data.update(loaded)
    data.update({key: value for key, value in overrides.items() if value is not None})
    return GatewaySettings.model_validate(data)
