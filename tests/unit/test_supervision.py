"""Long-running loops, watched: one that ends early is named until the app stops."""

from __future__ import annotations

import asyncio

from imagegen import supervision


async def forever() -> None:
    await asyncio.Event().wait()


async def crashes() -> None:
    raise RuntimeError("a bug in a loop")


async def test_a_loop_that_ends_early_is_named_dead() -> None:
    loops = supervision.Supervisor()
    loops.start("Tenants", forever())
    crashed = loops.start("API key index", crashes())
    await asyncio.wait([crashed])
    assert loops.dead() == ["API key index"]
    assert loops.died.is_set()
    await loops.stop()


async def test_a_watched_task_that_ends_is_named_dead_too() -> None:
    loops = supervision.Supervisor()
    watched = asyncio.create_task(crashes())
    loops.watch("webhook dispatcher", watched)
    await asyncio.wait([watched])
    assert loops.dead() == ["webhook dispatcher"]


async def test_loops_ended_by_stopping_the_app_are_not_dead() -> None:
    loops = supervision.Supervisor()
    running = loops.start("Tenants", forever())
    await asyncio.sleep(0)
    assert loops.dead() == []
    await loops.stop()
    assert running.cancelled()
    assert loops.dead() == []


async def test_a_loop_that_died_before_the_app_stopped_is_still_named_after() -> None:
    loops = supervision.Supervisor()
    crashed = loops.start("drift sweep", crashes())
    loops.start("retention", forever())
    await asyncio.wait([crashed])
    await loops.stop()
    assert loops.dead() == ["drift sweep"]
