"""Does a live object still hold every field we want it to? Comparing before applying
is what lets an unchanged Tenant cost reads only, and what catches a hand edit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def contains(*, live: Any, desired: Any) -> bool:
    """True when every field of desired is in live with the same value.

    Fields only live has (defaults the apiserver filled in, status, other managers'
    fields) do not count. Lists must have the same length and match item by item,
    as server-side apply replaces atomic lists and merges keyed ones in place.
    """
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and contains(live=live[key], desired=value)
            for key, value in desired.items()
        )
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        return (
            isinstance(live, Sequence)
            and not isinstance(live, str)
            and len(live) == len(desired)
            and all(contains(live=a, desired=b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)
