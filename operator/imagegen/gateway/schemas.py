"""What the batch API reads and writes. Request fields reuse the ImageBatch types of
api/imagebatch.py, so the gateway refuses exactly what the CRD would refuse, and says so
before anything reaches the apiserver."""

from __future__ import annotations

import datetime
from typing import Annotated

import pydantic

from imagegen.api import imagebatch, meta

MAX_METADATA_KEYS = 16
MetadataKey = Annotated[str, pydantic.Field(min_length=1, max_length=64)]
MetadataValue = Annotated[str, pydantic.Field(max_length=512)]


class ApiModel(pydantic.BaseModel):
    """Base of the API's bodies: snake_case, unknown fields refused."""

    model_config = pydantic.ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ItemRequest(ApiModel):
    """One image to generate."""

    id: imagebatch.ItemId | None = None
    """Unique within the batch; item-<index> when absent."""
    prompt: Annotated[imagebatch.Prompt, pydantic.Field(min_length=1)]
    """What to draw, 1 to 2000 characters."""
    negative_prompt: imagebatch.Prompt | None = None
    """What not to draw."""
    size: imagebatch.Size | None = None
    """WIDTHxHEIGHT in pixels; defaults.size when absent."""
    seed: imagebatch.Seed | None = None
    """Random seed, for repeatable images."""
    provider: meta.DnsLabel | None = None
    """Provider for this item; defaults.provider when absent."""


class DefaultsRequest(ApiModel):
    """Values for every item that does not set its own."""

    size: imagebatch.Size = "1024x1024"
    provider: meta.DnsLabel = "local"
    format: imagebatch.Format = "png"


class WebhookRequest(ApiModel):
    """Where to send notifications about the batch."""

    url: imagebatch.WebhookUrl
    """http(s) URL; private, loopback and link-local addresses are refused."""
    events: (
        Annotated[list[imagebatch.WebhookEvent], pydantic.Field(min_length=1, max_length=8)] | None
    ) = None
    """Events to send; by default the ones that end a batch."""


class BatchRequest(ApiModel):
    """A batch of 1 to 100 images."""

    items: Annotated[
        list[ItemRequest], pydantic.Field(min_length=1, max_length=imagebatch.MAX_ITEMS)
    ]
    defaults: DefaultsRequest | None = None
    priority: imagebatch.Priority = "normal"
    webhook: WebhookRequest | None = None
    metadata: (
        Annotated[dict[MetadataKey, MetadataValue], pydantic.Field(max_length=MAX_METADATA_KEYS)]
        | None
    ) = None
    """Your own labels for the batch, returned as given."""

    @pydantic.field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[ItemRequest]) -> list[ItemRequest]:
        meta.require_unique([item.id for item in items if item.id], what="item ids")
        imagebatch.require_prompts_fit(items)
        return items


class RequestCounts(ApiModel):
    """Items by state."""

    total: int
    queued: int
    running: int
    succeeded: int
    failed: int


class ItemResult(ApiModel):
    """How one item went."""

    id: str
    state: imagebatch.ItemState
    error: str | None = None
    image: str | None = None
    """Path of the image, once the item succeeded."""


class BatchObject(ApiModel):
    """A batch as the API shows it; the ImageBatch CR is its single source of truth."""

    id: str
    """The batch id, which is the ImageBatch's name."""
    status: imagebatch.Phase
    """Pending until the operator admits the batch, then as the CR's status.phase."""
    message: str | None = None
    """Why the batch is in this phase, such as why it was rejected."""
    progress: str | None = None
    """Finished items of all items, such as 37/100."""
    request_counts: RequestCounts
    priority: imagebatch.Priority
    cancel_requested: bool
    region: str | None = None
    created_at: datetime.datetime | None = None
    deadline: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
    metadata: dict[str, str] = pydantic.Field(default_factory=dict)
    items: list[ItemResult] = pydantic.Field(default_factory=list)
    """Results of the items that have one."""
    links: dict[str, str]
    """self, events, cancel, images (a template with {item_id}), imageList (every stored
    image with its link) and archive (a zip of them all)."""


class BatchList(ApiModel):
    """One page of the tenant's batches, newest names first as the apiserver orders them."""

    data: list[BatchObject]
    next_cursor: str | None = None
    """Pass as ?cursor= for the next page; absent on the last page."""


class StreamTicket(ApiModel):
    """Opens one batch's event stream, once: `GET .../events?ticket=<ticket>`."""

    ticket: str
    expires_in: int
    """Seconds left to open the stream with it."""
    parameter: str = "ticket"
    """The query parameter that carries it."""
