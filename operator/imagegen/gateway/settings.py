"""Every setting of the gateway process in one place, with the reason for each default."""

from __future__ import annotations

import pathlib
from typing import Annotated

import pydantic
import yaml

from imagegen.api import meta, objectstore, redisconfig


class Timeouts(pydantic.BaseModel):
    """Bounds on every call the gateway makes, and on what it waits for from clients."""

    model_config = pydantic.ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kube_request_seconds: Annotated[float, pydantic.Field(gt=0)] = 15.0
    """One apiserver request (watches excluded): a client waits for it, so keep it short."""
    kube_connect_seconds: Annotated[float, pydantic.Field(gt=0)] = 5.0
    """TCP and TLS connect to the apiserver."""
    watch_server_seconds: Annotated[int, pydantic.Field(ge=1)] = 290
    """Asked of the apiserver: end each watch after this, so watches are renewed."""
    watch_inactivity_seconds: Annotated[float, pydantic.Field(gt=60)] = 70.0
    """A watch silent this long (no event, not even a bookmark) is presumed to be on a dead
    connection and replaced. Above the apiserver's bookmark period, about 60 s."""
    body_read_seconds: Annotated[float, pydantic.Field(gt=0)] = 30.0
    """Reading a request body; a client that trickles it is cut off (408)."""
    webhook_check_seconds: Annotated[float, pydantic.Field(gt=0)] = 5.0
    """Resolving a webhook host to check it at submit time; a resolver that has not
    answered by then is a 503 with Retry-After, not a verdict on the URL."""


class GatewayRedis(redisconfig.RedisConnection):
    """The management Redis: rate limits, idempotency records, stream tickets, the webhook
    outbox. Its URL may also come from $IMAGEGEN_GATEWAY_REDIS_URL (a whole URL with its
    password, from a Secret); the password from `passwordFile` or
    $IMAGEGEN_GATEWAY_REDIS_PASSWORD. Never logged."""

    url: redisconfig.Url = "redis://127.0.0.1:6379/0"
    """As RedisSettings.url; a local Redis by default."""
    command_timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=120)] = 2.0
    """One Redis command, and the readiness probe's PING: rate limits and idempotency sit
    on every request's path, so a slow Redis is refused early (503) rather than waited on."""


CorsOrigin = Annotated[
    str,
    pydantic.Field(
        pattern=r"^(https?|chrome-extension|moz-extension)://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="scheme://host[:port], no path and no wildcard",
    ),
]


class GatewaySettings(pydantic.BaseModel):
    """How the gateway runs; loaded from a YAML file and the command line."""

    model_config = pydantic.ConfigDict(extra="forbid", use_attribute_docstrings=True)

    host: str = "0.0.0.0"  # noqa: S104 (a server in a pod listens on every interface)
    """Address to listen on."""
    port: Annotated[int, pydantic.Field(ge=0, le=65535)] = 8000
    """Port to listen on; 0 picks a free one (tests)."""
    kubeconfig: pathlib.Path | None = None
    """Kubeconfig of the management cluster; None means the in-cluster service account."""
    redis: GatewayRedis = pydantic.Field(default_factory=GatewayRedis)
    """The management Redis (one node or a Redis Cluster), its timeouts and retries."""
    redis_password: str | None = pydantic.Field(default=None, repr=False)
    """The management Redis's password from the environment (or from a URL held in a
    Secret), when `redis.passwordFile` is not set. Never logged."""
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
    """A folder the workers store images in (a shared volume, the local stack): the store
    of every region that `stores` does not name. None: such regions' images answer 501."""
    stores: dict[meta.DnsLabel, objectstore.ObjectStore] = pydantic.Field(default_factory=dict)
    """Each region's object store, as the operator's config names it."""
    store_credentials_dir: pathlib.Path | None = None
    """Folder with one subfolder per region holding `accessKeyId` and `secretAccessKey`
    (the chart mounts each region's Secret there). A region without one uses botocore's
    default chain (the pod's role)."""
    image_delivery: objectstore.Delivery = "redirect"
    """`redirect`: 302 to a presigned URL of the store, which clients must reach;
    `stream`: the gateway reads the object and streams it (a folder store always is)."""
    page_size: Annotated[int, pydantic.Field(ge=1, le=500)] = 50
    """Batches per page of GET /api/v1/batches when the client asks for no limit."""
    stream_ticket_seconds: Annotated[int, pydantic.Field(ge=1, le=300)] = 30
    """How long a stream ticket (POST .../events/tickets) stays redeemable: long enough for
    a page to open its WebSocket, short enough that a leaked URL is soon worthless."""
    cors_origins: list[CorsOrigin] = pydantic.Field(default_factory=list)
    """Origins whose scripts may call the API from a browser, such as a browser
    extension's chrome-extension://<id>; none by default. Never "*": the API is for the
    holders of keys, and each origin is a decision. The UI under /ui/ is same-origin."""
    max_streams_per_tenant: Annotated[int, pydantic.Field(ge=1)] = 100
    """Open SSE and WebSocket streams one tenant may hold; past it, 429 with Retry-After.
    A hundred viewers of a tenant's live batches; more is a client that leaks streams."""
    max_streams: Annotated[int, pydantic.Field(ge=1)] = 2000
    """Open streams in one gateway process, all tenants together: each holds a socket and
    a task (their watches are shared per namespace), so this bounds descriptors and memory."""
    kube_connections: Annotated[int, pydantic.Field(ge=1)] = 100
    """Connections to the apiserver for requests (creates, reads, lists). Watches have a
    pool of their own, sized from `max_streams`, so streams never take these."""
    timeouts: Timeouts = pydantic.Field(default_factory=Timeouts)


def load(
    path: pathlib.Path | None, *, redis_url: str | None = None, **overrides: object
) -> GatewaySettings:
    """Settings from a YAML file (or the defaults), with non-None overrides on top;
    `redis_url` replaces `redis.url`."""
    data: dict[str, object] = {}
    if path is not None:
        with path.open() as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        data.update(loaded)
    data.update({key: value for key, value in overrides.items() if value is not None})
    if redis_url is not None:
        redis = data.get("redis") or {}
        if not isinstance(redis, dict):
            raise ValueError("redis: expected a mapping of Redis settings")
        data["redis"] = {**redis, "url": redis_url}
    return GatewaySettings.model_validate(data)
