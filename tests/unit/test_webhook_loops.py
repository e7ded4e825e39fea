"""The webhook service's loops end when cancelled, however their clients report it."""

from __future__ import annotations

import asyncio

import pytest

from imagegen.gateway.webhooks import loops


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the loop and check it ended as cancelled (not wait_for: a loop that keeps
    swallowing cancellations would make it wait forever)."""
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done(), "the loop outlived its cancellation"
    assert task.cancelled()


async def test_a_loop_ends_when_its_step_is_cancelled_the_ordinary_way() -> None:
    task = asyncio.create_task(
        loops.repeat(
            lambda: asyncio.sleep(10), retry_on=(OSError,), on_error=print, pause_seconds=0
        )
    )
    await asyncio.sleep(0.05)
    await stop(task)


async def test_a_loop_ends_when_a_client_turned_the_cancellation_into_an_error() -> None:
    errors: list[Exception] = []

    async def step() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ConnectionError("connection lost") from None

    task = asyncio.create_task(
        loops.repeat(step, retry_on=(OSError,), on_error=errors.append, pause_seconds=0)
    )
    await asyncio.sleep(0.05)
    await stop(task)
    assert errors == [], "a cancellation is not an error to report"


async def test_a_loop_ends_when_a_client_swallowed_the_cancellation_whole() -> None:
    turns = 0

    async def step() -> None:
        # What a client that retries a "timeout" by itself does with a cancellation.
        nonlocal turns
        turns += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return

    task = asyncio.create_task(
        loops.repeat(step, retry_on=(OSError,), on_error=print, pause_seconds=0)
    )
    await asyncio.sleep(0.05)
    await stop(task)
    assert turns == 1


async def test_errors_the_loop_retries_are_reported_then_the_step_runs_again() -> None:
    errors: list[Exception] = []
    turns = 0
    done = asyncio.Event()

    async def step() -> None:
        nonlocal turns
        turns += 1
        if turns < 3:
            raise ConnectionError(f"down {turns}")
        done.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(
        loops.repeat(step, retry_on=(OSError,), on_error=errors.append, pause_seconds=0)
    )
    await asyncio.wait_for(done.wait(), timeout=5)
    await stop(task)
    assert [str(e) for e in errors] == ["down 1", "down 2"]


async def test_an_error_the_loop_does_not_retry_ends_it() -> None:
    async def step() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await loops.repeat(step, retry_on=(OSError,), on_error=print, pause_seconds=0)
