"""Objects that may be gone: the apiserver's "404 Not Found" is handled here, once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx2
import lightkube

NOT_FOUND = 404
CALL_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError,)
"""What a call to an apiserver may end with: an answer refusing it (lightkube.ApiError is
one) or no answer at all (a timeout, a connection refused or reset). A loop that runs
for the process's life catches all of them: one slow apiserver must not end it."""


def status_of(error: BaseException) -> int | None:
    """The HTTP status of the apiserver's answer that `error` reports, or None when the
    error is no answer (a connection failed, a line did not decode). lightkube raises an
    ApiError for a Status it decoded, httpx an HTTPStatusError for a watch refused before
    its stream began."""
    if isinstance(error, lightkube.ApiError):
        code: int | None = error.status.code
        return code
    if isinstance(error, httpx2.HTTPStatusError):
        return error.response.status_code
    return None


@contextlib.contextmanager
def not_found_ignored() -> Iterator[None]:
    """Suppress the apiserver's 404, for a call whose object may be gone already (a patch
    or a delete) or whose absence the code after the block handles."""
    try:
        yield
    except lightkube.ApiError as error:
        if status_of(error) != NOT_FOUND:
            raise


async def get_or_none(
    client: lightkube.AsyncClient, kind: Any, name: str, *, namespace: str | None = None
) -> Any:
    """The object, or None when the apiserver has no such object."""
    with not_found_ignored():
        return await client.get(kind, name, namespace=namespace)
    return None


async def delete_if_present(
    client: lightkube.AsyncClient, kind: Any, name: str, *, namespace: str | None = None
) -> None:
    """Delete the object; one that is gone already is as good."""
    with not_found_ignored():
        await client.delete(kind, name, namespace=namespace)
