"""One leased item through the worker: decoded, reused or generated under a renewed lease,
stored, recorded; and what happens when the payload, the provider or the lease fails.
The queue and the providers are test doubles; storage is a real folder."""

import asyncio
import hashlib
import io
import logging
import pathlib

import pytest
from PIL import Image

from imagegen.api import objectstore
from imagegen.queue import core, model, payload
from imagegen.storage import base as storage_base
from imagegen.storage import files
from imagegen.worker import items
from imagegen.worker.providers import base

UID = "5f0c6a4e-2d1b-4c6e-9a51-3b8f0e7d2c11"
WORK = payload.WorkItem(prompt="a lighthouse", width=64, height=48, providers=("local",))


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeQueue:
    """Records what the item reports; renew answers `held` (or blocks while `stalled`)."""

    def __init__(self, *, lease_seconds: float = 30.0) -> None:
        self.lease_seconds = lease_seconds
        self.held = True
        self.renewals = 0
        self.completed: list[model.Json] = []
        self.failed: list[tuple[str, bool]] = []
        self.released = 0

    async def renew(self, *, lease: model.Lease) -> bool:
        self.renewals += 1
        return self.held

    async def complete(self, *, lease: model.Lease, result: model.Json) -> bool:
        self.completed.append(result)
        return True

    async def fail(self, *, lease: model.Lease, error: str, retryable: bool) -> core.FailOutcome:
        self.failed.append((error, retryable))
        return "requeued" if retryable else "failed"

    async def release(self, *, lease: model.Lease) -> bool:
        self.released += 1
        return True


class FakeProvider:
    """Makes a PNG of the asked size, after `delay`; or raises `error`; or waits on `gate`."""

    def __init__(
        self,
        *,
        name: str = "local",
        error: Exception | None = None,
        delay: float = 0.0,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.error = error
        self.delay = delay
        self.gate = gate
        self.calls = 0

    async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return base.GeneratedImage(
            data=png(request.width, request.height),
            content_type="image/png",
            provider=self.name,
            width=request.width,
            height=request.height,
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def make_lease(
    document: model.Json | None = None, *, item_id: str = "a1", attempt: int = 1
) -> model.Lease:
    return model.Lease(
        batch_uid=UID,
        item_id=item_id,
        tenant="acme",
        tier="standard",
        priority="normal",
        payload=WORK.to_json() if document is None else document,
        attempt=attempt,
        worker_id="w1",
        token="t",
        expires_at=4_000_000_000.0,
    )


@pytest.fixture
def store(tmp_path: pathlib.Path) -> files.FileStore:
    return files.FileStore(root=tmp_path)


def runner(queue: FakeQueue, store: files.FileStore, *providers: FakeProvider) -> items.ItemRunner:
    return items.ItemRunner(
        queue=queue,
        providers={provider.name: provider for provider in providers or (FakeProvider(),)},
        store=store,
    )


def stored(store: files.FileStore) -> list[str]:
    return sorted(
        path.name
        for path in store.root.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )


NAME = objectstore.ImageName(tenant="acme", batch_uid=UID, item_id="a1", format="png")


def image_path(store: files.FileStore) -> pathlib.Path:
    return store.path(key=NAME.key)


async def test_an_item_is_generated_stored_and_completed_with_its_result(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()

    assert await runner(queue, store).run(lease=make_lease()) == "succeeded"

    path = image_path(store)
    assert queue.completed == [
        {
            "uri": path.as_uri(),
            "provider": "local",
            "contentType": "image/png",
            "width": 64,
            "height": 48,
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(png(64, 48)).hexdigest(),
            "fallbacks": [],
        }
    ]
    assert path.read_bytes() == png(64, 48)


async def test_each_generation_is_logged_once_before_the_image_is_stored(
    store: files.FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    queue = FakeQueue()
    queue.held = False  # the lease is lost once the image is made: nothing is stored
    caplog.set_level(logging.DEBUG, logger=items.__name__)

    assert await runner(queue, store).run(lease=make_lease(attempt=2)) == "lost"

    generated = [r.getMessage() for r in caplog.records if ": generated by " in r.getMessage()]
    assert len(generated) == 1
    assert generated[0].startswith(f"item {UID}/a1: generated by local in ")
    assert generated[0].endswith(" s (attempt 2)")
    assert stored(store) == []


async def test_the_asked_provider_goes_first_and_fallbacks_are_recorded(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()
    down = base.ProviderError("openai: HTTP 500: down", retryable=True)
    work = payload.WorkItem(
        prompt="p", width=8, height=8, provider="openai", providers=("local", "openai")
    )
    providers = (FakeProvider(name="openai", error=down), FakeProvider(name="local"))

    assert await runner(queue, store, *providers).run(lease=make_lease(work.to_json())) == (
        "succeeded"
    )

    assert queue.completed[0]["provider"] == "local"
    assert queue.completed[0]["fallbacks"] == [
        {"provider": "openai", "error": "openai: HTTP 500: down", "retryable": True}
    ]


async def test_a_malformed_payload_fails_at_once_naming_the_field(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()
    provider = FakeProvider()

    outcome = await runner(queue, store, provider).run(lease=make_lease({"prompt": "p"}))

    assert outcome == "failed"
    assert queue.failed == [("payload.width: must be an integer, got nothing", False)]
    assert provider.calls == 0


async def test_an_item_id_that_is_no_file_name_fails_at_once(store: files.FileStore) -> None:
    queue = FakeQueue()

    assert await runner(queue, store).run(lease=make_lease(item_id="../up")) == "failed"
    assert "item id" in queue.failed[0][0]
    assert stored(store) == []


@pytest.mark.parametrize("attempt", [1, 2])
async def test_an_item_whose_image_is_stored_completes_without_generating(
    store: files.FileStore, attempt: int
) -> None:
    # Attempt 1 too: a queue that lost its data enqueues the item again as new.
    queue = FakeQueue()
    provider = FakeProvider()
    metadata = {"provider": "local", "sha256": "abc", "width": "64", "height": "48"}
    uri = (await store.put(name=NAME, data=png(64, 48), metadata=metadata)).uri

    assert await runner(queue, store, provider).run(lease=make_lease(attempt=attempt)) == ("reused")

    assert provider.calls == 0
    result = queue.completed[0]
    assert (result["uri"], result["reused"], result["provider"]) == (uri, True, "local")
    assert (result["width"], result["height"], result["contentType"]) == (64, 48, "image/png")
    assert stored(store) == ["a1.png"]


async def test_a_file_in_the_items_place_without_metadata_is_made_anew(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()
    image_path(store).parent.mkdir(parents=True)
    image_path(store).write_bytes(b"not an image")

    assert await runner(queue, store).run(lease=make_lease(attempt=2)) == "succeeded"
    assert image_path(store).read_bytes() == png(64, 48)


@pytest.mark.parametrize(("retryable", "outcome"), [(True, "requeued"), (False, "failed")])
async def test_a_provider_error_fails_the_attempt_as_retryable_as_it_was(
    store: files.FileStore, retryable: bool, outcome: items.Disposition
) -> None:
    queue = FakeQueue()
    error = base.ProviderError("local: cannot render", retryable=retryable)

    assert await runner(queue, store, FakeProvider(error=error)).run(lease=make_lease()) == outcome

    assert queue.failed == [("all providers failed: local: local: cannot render", retryable)]
    assert stored(store) == []


async def test_an_unexpected_error_is_recorded_on_the_item_as_retryable(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()
    broken = FakeProvider(error=RuntimeError("boom"))

    assert await runner(queue, store, broken).run(lease=make_lease()) == "requeued"
    assert queue.failed == [("worker error: RuntimeError: boom", True)]


async def test_the_lease_is_renewed_while_the_image_is_made(store: files.FileStore) -> None:
    queue = FakeQueue(lease_seconds=0.03)

    assert await runner(queue, store, FakeProvider(delay=0.1)).run(lease=make_lease()) == (
        "succeeded"
    )
    # Every 10 ms for 100 ms, then once more to confirm the lease before storing.
    assert queue.renewals >= 5


async def test_a_lost_lease_stops_the_work_and_stores_nothing(
    store: files.FileStore,
) -> None:
    queue = FakeQueue(lease_seconds=0.03)
    queue.held = False
    never = FakeProvider(gate=asyncio.Event())

    outcome = await asyncio.wait_for(runner(queue, store, never).run(lease=make_lease()), 5)

    assert outcome == "lost"
    assert (queue.completed, queue.failed, stored(store)) == ([], [], [])


async def test_a_lease_lost_just_as_the_image_was_made_stores_nothing(
    store: files.FileStore,
) -> None:
    queue = FakeQueue()
    queue.held = False

    assert await runner(queue, store).run(lease=make_lease()) == "lost"
    assert (queue.completed, stored(store)) == ([], [])


async def test_abandoning_hands_the_item_back_unfinished(store: files.FileStore) -> None:
    queue = FakeQueue()
    work = runner(queue, store, FakeProvider(gate=asyncio.Event()))

    running = asyncio.create_task(work.run(lease=make_lease()))
    await asyncio.sleep(0.05)
    work.abandon.set()

    assert await asyncio.wait_for(running, 5) == "released"
    assert (queue.released, queue.completed, stored(store)) == (1, [], [])


def test_an_items_providers_that_this_worker_lacks_are_skipped() -> None:
    work = payload.WorkItem(prompt="p", width=8, height=8, providers=("openai", "local"))

    built = items.chain_for(work=work, providers={"local": FakeProvider()})

    assert built.names == ("local",)


@pytest.mark.parametrize(
    ("work", "message"),
    [
        (
            payload.WorkItem(
                prompt="p", width=8, height=8, provider="openai", providers=("openai", "local")
            ),
            r"provider 'openai' does not run on this worker \(it runs: local\)",
        ),
        (
            payload.WorkItem(prompt="p", width=8, height=8, providers=("openai",)),
            r"none of the providers openai runs on this worker \(it runs: local\)",
        ),
    ],
)
def test_an_item_this_worker_cannot_serve_fails_for_good(
    work: payload.WorkItem, message: str
) -> None:
    with pytest.raises(base.ProviderError, match=message) as error:
        items.chain_for(work=work, providers={"local": FakeProvider()})
    assert not error.value.retryable


def test_prompts_are_clipped_for_logs() -> None:
    assert items.clip(text="short") == "short"
    clipped = items.clip(text="x" * 200)
    assert len(clipped) == items.PROMPT_LOG_CHARS
    assert clipped.endswith("...")


class FlakyStore(files.FileStore):
    """A folder store whose puts fail `failures` times first, as a store in an outage."""

    def __init__(self, *, root: pathlib.Path, failures: int, reason: storage_base.Reason) -> None:
        super().__init__(root=root)
        self.failures = failures
        self.reason: storage_base.Reason = reason
        self.puts = 0

    async def put(
        self, *, name: objectstore.ImageName, data: bytes, metadata: dict[str, str]
    ) -> storage_base.StoredObject:
        self.puts += 1
        if self.puts <= self.failures:
            raise storage_base.StoreError(
                store="s3://b at http://x", reason=self.reason, detail="503"
            )
        return await super().put(name=name, data=data, metadata=metadata)


class Health:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.recoveries = 0

    async def failed(self, *, error: storage_base.StoreError) -> None:
        self.failures.append(error.reason)

    async def recovered(self) -> None:
        self.recoveries += 1


@pytest.mark.parametrize("reason", ["Unreachable", "AccessDenied"])
async def test_a_failing_store_delays_the_item_and_never_fails_it(
    tmp_path: pathlib.Path, reason: storage_base.Reason
) -> None:
    queue = FakeQueue()
    store = FlakyStore(root=tmp_path, failures=3, reason=reason)
    health = Health()
    work = items.ItemRunner(
        queue=queue,
        providers={"local": FakeProvider()},
        store=store,
        health=health,  # type: ignore[arg-type]
    )

    assert await asyncio.wait_for(work.run(lease=make_lease()), 10) == "succeeded"

    assert (store.puts, queue.failed, health.failures) == (4, [], [reason] * 3)
    assert health.recoveries >= 1
    assert image_path(store).read_bytes() == png(64, 48)


async def test_a_lease_lost_while_the_store_is_down_stores_nothing_and_fails_nothing(
    tmp_path: pathlib.Path,
) -> None:
    queue = FakeQueue(lease_seconds=0.03)
    store = FlakyStore(root=tmp_path, failures=10**6, reason="Unreachable")
    work = items.ItemRunner(queue=queue, providers={"local": FakeProvider()}, store=store)
    renewals = 0

    async def renew(*, lease: model.Lease) -> bool:
        nonlocal renewals
        renewals += 1
        return renewals < 5

    queue.renew = renew  # type: ignore[method-assign]

    assert await asyncio.wait_for(work.run(lease=make_lease()), 10) == "lost"
    assert (queue.completed, queue.failed, stored(store)) == ([], [], [])
