"""The watch helper's decisions, without I/O: which failure relists and which resumes,
how long it pauses, and when it says it is broken. Its behaviour against a real apiserver
(resume, relist on 410, inactivity) is tests/integration/test_kube_watching.py."""

from __future__ import annotations

import httpx2
import lightkube
import pytest
from lightkube.models import meta_v1

from imagegen.kube import objects, watching

OPTIONS = watching.Options(first_backoff_seconds=0.5, max_backoff_seconds=30.0)


def api_error(code: int) -> lightkube.ApiError:
    """What lightkube raises for a Status the apiserver sent (an ERROR event included)."""
    return lightkube.ApiError(status=meta_v1.Status(code=code, message="too old resource version"))


def refused(code: int) -> httpx2.HTTPStatusError:
    """What httpx raises for a watch refused before its stream began."""
    request = httpx2.Request("GET", "https://127.0.0.1:6443/api/v1/pods?watch=true")
    return httpx2.HTTPStatusError(
        "refused", request=request, response=httpx2.Response(code, request=request)
    )


@pytest.mark.parametrize("error", [api_error(410), refused(410)], ids=["event", "answer"])
def test_a_410_gone_lists_again(error: Exception) -> None:
    assert watching.step_after(error) is watching.Step.RELIST


@pytest.mark.parametrize(
    "error",
    [
        api_error(500),
        refused(403),
        httpx2.ConnectError("connection refused"),
        httpx2.RemoteProtocolError("peer closed connection without sending complete message"),
        ValueError("JSON is malformed: truncated"),
        watching.SilentError("nothing for 70s"),
    ],
    ids=["error-event", "forbidden", "refused", "cut", "undecodable-line", "silent"],
)
def test_every_other_failure_resumes_from_the_last_version(error: Exception) -> None:
    assert watching.step_after(error) is watching.Step.RESUME


def test_a_silent_connection_is_a_timeout_the_helper_retries() -> None:
    assert isinstance(watching.SilentError("nothing"), TimeoutError)


def test_status_of_reads_a_decoded_status_and_a_bare_answer_alike() -> None:
    assert objects.status_of(api_error(404)) == 404
    assert objects.status_of(refused(503)) == 503
    assert objects.status_of(httpx2.ConnectError("refused")) is None


def test_the_pause_doubles_with_each_failure_up_to_the_cap() -> None:
    ceilings = [
        watching.backoff_seconds(failures=n, options=OPTIONS, jitter=1.0) for n in range(1, 10)
    ]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_jitter_spreads_a_pause_over_its_upper_half_and_never_beyond() -> None:
    lowest = watching.backoff_seconds(failures=3, options=OPTIONS, jitter=0.0)
    highest = watching.backoff_seconds(failures=3, options=OPTIONS, jitter=1.0)
    assert (lowest, highest) == (1.0, 2.0)
    assert watching.backoff_seconds(failures=50, options=OPTIONS, jitter=1.0) == 30.0


def test_one_failure_is_a_blip_two_in_a_row_are_broken_until_it_recovers() -> None:
    health = watching.Health()
    health.failed(httpx2.ConnectError("refused"))
    assert not health.broken()
    health.failed(watching.SilentError("nothing for 70s"))
    assert health.broken()
    assert health.last_error == "SilentError: nothing for 70s"
    health.recovered()
    assert (health.broken(), health.failures, health.last_error) == (False, 0, None)
