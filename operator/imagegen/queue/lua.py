"""The queue's Lua scripts, read from package data and registered on a Redis client.

Each script is `scripts/common.lua` (pool keys, lane scoring, shared steps) followed by
the script's own file, so every atomic step is one EVALSHA on one slot.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

from redis.commands.core import AsyncScript

from imagegen import redisconn


@functools.cache
def source(name: str) -> str:
    """The full text of script `name`: the common prelude, then `scripts/<name>.lua`."""
    folder = importlib.resources.files("imagegen.queue").joinpath("scripts")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    return common + "\n" + folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scripts:
    """One registered script per queue operation."""

    enqueue: AsyncScript
    lease: AsyncScript
    renew: AsyncScript
    complete: AsyncScript
    fail: AsyncScript
    release: AsyncScript
    reclaim: AsyncScript
    cancel: AsyncScript
    cancel_items: AsyncScript
    forget: AsyncScript
    progress: AsyncScript
    depth: AsyncScript


def register(*, client: redisconn.Client) -> Scripts:
    """Register every script on `client` (loaded by EVALSHA on first use, then cached)."""
    return Scripts(
        **{
            field.name: client.register_script(source(field.name))
            for field in dataclasses.fields(Scripts)
        }
    )
