"""ImageBatch (namespaced): a tenant's request for up to 100 images, and how it went."""

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pydantic

from imagegen.api import meta

ITEMS_IMMUTABLE: meta.Rule = meta.Rule(
    rule="self == oldSelf", message="items are immutable after creation"
)
DEFAULTS_IMMUTABLE: meta.Rule = meta.Rule(
    rule="self == oldSelf", message="defaults are immutable after creation"
)
TENANT_IMMUTABLE: meta.Rule = meta.Rule(rule="self == oldSelf", message="tenant is immutable")
CANCEL_FINAL: meta.Rule = meta.Rule(
    rule="self || !oldSelf", message="cancel cannot be set back to false"
)

MAX_ITEMS = 100
MAX_PROMPT_LENGTH = 2000
MAX_PROMPT_CHARACTERS = 30_000
"""All prompts and negative prompts of a batch together, in characters. The biggest batch
the CRD admits must fit in every annotation anyone writes: `kubectl apply` (and Argo CD,
which applies the same way) keeps a JSON copy of the object in one annotation, and the
apiserver allows 256 KiB of annotations in all. In that copy a character takes up to 6
bytes (`<`, `>` and `&` are written as \\u003c...), a CJK one 3; the rest of the biggest
spec (100 items with 63-character ids and providers, a 2048-character webhook URL) takes
about 35 KB. 30,000 characters at 6 bytes make about 215 KB, leaving about 45 KB for
your own labels and annotations (which the copy holds a second time)."""
PROMPTS_FIT: meta.Rule = meta.Rule(
    rule="self.map(i, size(i.prompt) + (has(i.negativePrompt) ? size(i.negativePrompt) : 0))"
    f".sum() <= {MAX_PROMPT_CHARACTERS}",
    message=f"prompts and negative prompts together must be at most {MAX_PROMPT_CHARACTERS}"
    " characters per batch",
)
SIZE_PATTERN = r"^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$"
ITEM_ID_PATTERN = r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"

Priority = Literal["high", "normal", "low"]
Format = Literal["png", "jpeg", "webp"]
Size = Annotated[str, pydantic.Field(max_length=9, pattern=SIZE_PATTERN)]
# No control characters but tab and line ends, and no Unicode line or paragraph separators:
# they mean nothing in a prompt, and clients that split watch streams the way Python's
# str.splitlines does (lightkube) would cut the event of such a batch in two.
PROMPT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{2028}\x{2029}]*$"
Prompt = Annotated[str, pydantic.Field(max_length=MAX_PROMPT_LENGTH, pattern=PROMPT_PATTERN)]
ItemId = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=ITEM_ID_PATTERN)]
Seed = Annotated[int, pydantic.Field(ge=0, le=4_294_967_295)]
WebhookUrl = Annotated[str, pydantic.Field(max_length=2048, pattern=r"^https?://[^\s]+$")]
Phase = Literal[
    "Pending",
    "Rejected",
    "Queued",
    "Running",
    "Succeeded",
    "PartiallySucceeded",
    "Failed",
    "Cancelled",
]
TERMINAL_PHASES: tuple[Phase, ...] = (
    "Rejected",
    "Succeeded",
    "PartiallySucceeded",
    "Failed",
    "Cancelled",
)
"""Phases a batch never leaves."""
ItemState = Literal["Queued", "Running", "Succeeded", "Failed", "Cancelled"]
WebhookEvent = Literal[
    "rejected",
    "queued",
    "running",
    "progress",
    "succeeded",
    "partiallySucceeded",
    "failed",
    "cancelled",
    "expired",
]
TERMINAL_EVENTS: tuple[WebhookEvent, ...] = (
    "succeeded",
    "partiallySucceeded",
    "failed",
    "cancelled",
    "rejected",
)
"""Webhook events that end a batch, sent when a webhook names no events."""


class Defaults(meta.Model):
    """Values for every item that does not set its own."""

    size: Size = "1024x1024"
    """Image size as WIDTHxHEIGHT in pixels."""
    provider: meta.DnsLabel = "local"
    """Provider that generates the images."""
    format: Format = "png"
    """Image file format."""


class Item(meta.Model):
    """One image to generate."""

    id: ItemId
    """Identifier unique within the batch; names the image and its result."""
    prompt: Annotated[Prompt, pydantic.Field(min_length=1)]
    """What to draw."""
    negative_prompt: Prompt | None = None
    """What not to draw."""
    seed: Seed | None = None
    """Random seed, for repeatable images."""
    size: Size | None = None
    """Image size as WIDTHxHEIGHT; defaults.size when absent."""
    provider: meta.DnsLabel | None = None
    """Provider for this item; defaults.provider when absent."""


class Webhook(meta.Model):
    """Where to send notifications about the batch."""

    url: WebhookUrl
    """http or https URL that receives a POST per event."""
    events: Annotated[
        list[WebhookEvent],
        pydantic.Field(
            min_length=1, max_length=9, json_schema_extra={"x-kubernetes-list-type": "set"}
        ),
    ] = pydantic.Field(default_factory=lambda: list(TERMINAL_EVENTS))
    """Events to send; by default the ones that end a batch."""

    @pydantic.field_validator("events")
    @classmethod
    def _unique_events(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        meta.require_unique(events, what="webhook events")
        return events


MAX_TTL_SECONDS = 366 * 86_400
"""Longest retention a batch or Tenant may ask for: a year."""


class ImageBatchSpec(meta.Model):
    """Desired state of an image batch."""

    tenant: Annotated[
        meta.DnsLabel, pydantic.Field(json_schema_extra=meta.validations(TENANT_IMMUTABLE))
    ]
    """Name of the Tenant that submits the batch; it must own the batch's namespace."""
    priority: Priority = "normal"
    """Order among the tenant's own batches."""
    defaults: Annotated[
        Defaults, pydantic.Field(json_schema_extra=meta.validations(DEFAULTS_IMMUTABLE))
    ] = pydantic.Field(default_factory=Defaults)
    """Values for every item that does not set its own."""
    items: Annotated[
        list[Item],
        pydantic.Field(
            min_length=1,
            max_length=MAX_ITEMS,
            json_schema_extra=meta.list_map("id") | meta.validations(ITEMS_IMMUTABLE, PROMPTS_FIT),
        ),
    ]
    """Images to generate, 1 to 100; ids unique; at most 30,000 prompt characters in all."""
    webhook: Webhook | None = None
    """Where to send notifications about the batch."""
    cancel: Annotated[bool, pydantic.Field(json_schema_extra=meta.validations(CANCEL_FINAL))] = (
        False
    )
    """true stops the batch: queued items are removed and running ones dropped."""
    ttl_seconds_after_finished: Annotated[int, pydantic.Field(ge=0, le=MAX_TTL_SECONDS)] | None = (
        None
    )
    """Seconds after the batch finishes (completedAt) when the operator deletes it with its
    images and queue data, as a Job's field of this name; unset: the Tenant's
    spec.retention.batchTTLSeconds."""

    @pydantic.field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[Item]) -> list[Item]:
        meta.require_unique([item.id for item in items], what="item ids")
        require_prompts_fit(items)
        return items


def prompt_characters(items: Sequence[Any]) -> int:
    """Characters of all prompts and negative prompts of the items (PROMPTS_FIT)."""
    return sum(len(item.prompt) + len(item.negative_prompt or "") for item in items)


def require_prompts_fit(items: Sequence[Any]) -> None:
    """Raise ValueError with PROMPTS_FIT's message when the items' prompts are too long."""
    if prompt_characters(items) > MAX_PROMPT_CHARACTERS:
        raise ValueError(PROMPTS_FIT.message)


MAX_ENQUEUED_REGIONS = 64
"""Distinct regions one batch can have used: a Tenant allows 10 at a time, and may change
them while a batch fails over; an operator configuration names far fewer."""


class Counts(meta.StatusModel):
    """Items by state."""

    total: Annotated[int, pydantic.Field(ge=0)] = 0
    """All items of the batch."""
    queued: Annotated[int, pydantic.Field(ge=0)] = 0
    """Items waiting in the region's queue."""
    running: Annotated[int, pydantic.Field(ge=0)] = 0
    """Items a worker is generating."""
    succeeded: Annotated[int, pydantic.Field(ge=0)] = 0
    """Items whose image is stored."""
    failed: Annotated[int, pydantic.Field(ge=0)] = 0
    """Items that gave up after their attempts."""


class ItemStatus(meta.StatusModel):
    """Result of one item."""

    id: str
    """Id of the item in spec.items."""
    state: ItemState
    """Where the item is."""
    provider: str | None = None
    """Provider that generated the image."""
    uri: str | None = None
    """Where the image is stored."""
    error: str | None = None
    """Why the item failed."""
    attempts: int | None = None
    """Attempts made so far."""
    finished_at: meta.Timestamp | None = None
    """When the item succeeded or failed."""


class ImageBatchStatus(meta.StatusModel):
    """Observed state of an image batch, written by the operator."""

    phase: Phase | None = None
    """Pending, Rejected, Queued, Running, Succeeded, PartiallySucceeded, Failed or Cancelled."""
    message: str | None = None
    """Human-readable explanation of the phase, such as why the batch was rejected."""
    counts: Counts | None = None
    """Items by state."""
    progress: str | None = None
    """Finished items of all items, such as 37/100."""
    region: str | None = None
    """Region whose queue holds the batch's unfinished items now (dispatch, then failover)."""
    pool: str | None = None
    """Queue pool the items were enqueued in, recorded at dispatch (`shared` or
    `dedicated-<tenant>`): cancel, failover, cleanup and progress use it, never the Tenant,
    which may have changed its pool since or be gone."""
    enqueued_regions: Annotated[
        list[meta.DnsLabel] | None,
        pydantic.Field(
            max_length=MAX_ENQUEUED_REGIONS, json_schema_extra={"x-kubernetes-list-type": "set"}
        ),
    ] = None
    """Every region the items have been enqueued in, in the order first used; only ever
    added to. Where cancel and cleanup go, and where a failed-over batch's leftovers are
    cancelled once the region answers again."""
    items: Annotated[
        list[ItemStatus] | None, pydantic.Field(json_schema_extra=meta.list_map("id"))
    ] = None
    """Result per item."""
    admitted_at: meta.Timestamp | None = None
    """When the batch passed admission."""
    started_at: meta.Timestamp | None = None
    """When the first item started."""
    completed_at: meta.Timestamp | None = None
    """When the last item finished."""
    deadline: meta.Timestamp | None = None
    """When the batch must be complete under the tenant's SLA."""
    sla_met: bool | None = None
    """Whether the batch completed by its deadline."""
    conditions: meta.Conditions | None = None
    """Conditions of the batch."""
    observed_generation: int | None = None
    """metadata.generation that this status describes."""


class ImageBatch(meta.Resource):
    """A batch of images for one tenant, generated in one region."""

    info = meta.ResourceInfo(
        kind="ImageBatch",
        plural="imagebatches",
        singular="imagebatch",
        scope="Namespaced",
        short_names=("ib", "ibatch"),
        printer_columns=(
            meta.PrinterColumn(name="Tenant", json_path=".spec.tenant"),
            meta.PrinterColumn(name="Phase", json_path=".status.phase"),
            meta.PrinterColumn(name="Progress", json_path=".status.progress"),
            meta.PrinterColumn(name="Region", json_path=".status.region"),
            meta.PrinterColumn(name="Pool", json_path=".status.pool", priority=1),
        ),
    )

    api_version: meta.ApiVersion = meta.API_VERSION
    kind: Literal["ImageBatch"] = "ImageBatch"
    metadata: meta.ObjectMeta
    spec: ImageBatchSpec
    status: ImageBatchStatus | None = None
