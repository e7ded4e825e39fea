"""A provider for any OpenAI-compatible images endpoint (OpenAI itself, or a self-hosted
server that speaks the same protocol).

One request per image: `POST {base_url}/images/generations` with
`{model, prompt, n: 1, size: "WxH", response_format: "b64_json"}` and a Bearer key; the
answer is `{"created": ..., "data": [{"b64_json": ...}]}`. The seed is sent only when
`send_seed` is set, because OpenAI's own endpoint refuses unknown fields while some
self-hosted servers accept a seed. Negative prompts have no field in this protocol and are
not sent. The returned image is converted to the requested format when it differs.

Transient failures (HTTP 408, 429 and 5xx, timeouts, transport errors) are retried a
bounded number of times with exponential backoff and jitter, waiting what Retry-After asks
up to a cap. Other answers are final. The API key is read from an environment variable
(a Kubernetes Secret mounted as env), kept only in the client's headers, and removed from
any server message before that message is raised or logged.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx2
import tenacity

from imagegen import retryafter
from imagegen.worker.providers import base, codec

NAME = "openai"
MAX_MESSAGE_LENGTH = 500

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Bounds on each HTTP attempt."""

    connect_seconds: float = 5.0
    """TCP and TLS connect; a healthy endpoint connects in well under a second."""
    read_seconds: float = 120.0
    """Longest silence while waiting for the answer. Generation happens before the server
    sends a byte, and a large image takes a real model tens of seconds."""
    write_seconds: float = 30.0
    """Sending the request body, which is small."""
    pool_seconds: float = 10.0
    """Waiting for a free connection when `max_connections` are all busy."""
    attempt_seconds: float = 180.0
    """One whole attempt, connect to last byte: the per-phase timeouts above reset on
    every chunk, so a server that trickles bytes would otherwise hold an item forever."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retry:
    """How transient failures are retried."""

    max_attempts: int = 4
    """Attempts per image, the first included. Beyond this the item falls back to the
    next provider rather than waiting longer on one that is struggling."""
    backoff_initial_seconds: float = 0.5
    """First wait; it doubles on every further attempt."""
    backoff_max_seconds: float = 20.0
    """Longest wait computed by the backoff."""
    jitter_seconds: float = 0.5
    """Up to this much random time is added to each wait, so workers that failed together
    do not all retry together."""
    retry_after_cap_seconds: float = 30.0
    """Longest wait a server's Retry-After header can impose; a longer request is cut to
    this, keeping an item within its batch deadline."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class OpenAISettings:
    """Where the endpoint is and how it is called."""

    base_url: str = "https://api.openai.com/v1"
    """The API root; `/images/generations` is appended."""
    model: str = "dall-e-3"
    """Model name sent with every request."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable that holds the key (never the key itself)."""
    send_seed: bool = False
    """Send the item's seed as `seed`; only for servers that accept the field."""
    max_connections: int = 16
    """Requests in flight at once from one worker; more items wait for `pool_seconds`."""
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    retry: Retry = dataclasses.field(default_factory=Retry)


class _TransientError(Exception):
    """One attempt failed in a way that a later attempt may not."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIProvider:
    """Generates images through an OpenAI-compatible HTTP API."""

    def __init__(
        self, *, settings: OpenAISettings, api_key: str, sleep: Sleep = asyncio.sleep
    ) -> None:
        """`sleep` waits between attempts; tests pass one that records the waits."""
        self.name = NAME
        self._settings = settings
        self._api_key = api_key
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=settings.retry.backoff_initial_seconds,
            max=settings.retry.backoff_max_seconds,
            jitter=settings.retry.jitter_seconds,
        )
        timeouts = settings.timeouts
        self._client = httpx2.AsyncClient(
            base_url=settings.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx2.Timeout(
                connect=timeouts.connect_seconds,
                read=timeouts.read_seconds,
                write=timeouts.write_seconds,
                pool=timeouts.pool_seconds,
            ),
            limits=httpx2.Limits(max_connections=settings.max_connections),
        )

    def __repr__(self) -> str:
        settings = self._settings
        return f"OpenAIProvider(base_url={settings.base_url!r}, model={settings.model!r})"

    async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
        """Generate one image, retrying transient failures within the configured bound."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self._settings.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_TransientError),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            data: bytes = await retrying(self._attempt, request)
        except _TransientError as error:
            attempts = self._settings.retry.max_attempts
            raise base.ProviderError(
                f"{NAME}: gave up after {attempts} attempt{'s' if attempts > 1 else ''}: {error}",
                retryable=True,
            ) from error
        try:
            encoded, width, height = await asyncio.to_thread(
                codec.transcode, data=data, format=request.format
            )
        except ValueError as error:
            raise base.ProviderError(
                f"{NAME}: the server's image is unusable: {error}", retryable=False
            ) from error
        return base.GeneratedImage(
            data=encoded,
            content_type=base.CONTENT_TYPES[request.format],
            provider=NAME,
            width=width,
            height=height,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def _body(self, request: base.GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._settings.model,
            "prompt": request.prompt,
            "n": 1,
            "size": request.size,
            "response_format": "b64_json",
        }
        if self._settings.send_seed and request.seed is not None:
            body["seed"] = request.seed
        return body

    async def _attempt(self, request: base.GenerationRequest) -> bytes:
        try:
            async with asyncio.timeout(self._settings.timeouts.attempt_seconds):
                response = await self._client.post("images/generations", json=self._body(request))
        except (httpx2.TimeoutException, TimeoutError) as error:
            raise _TransientError(f"timed out ({type(error).__name__})") from error
        except httpx2.TransportError as error:
            raise _TransientError(f"transport error ({type(error).__name__}: {error})") from error
        status = response.status_code
        if response.is_success:
            return _image_bytes(response)
        message = f"HTTP {status}: {self._server_message(response)}"
        if status in (408, 429) or status >= 500:
            retry_after = retryafter.seconds(response.headers.get("Retry-After"))
            raise _TransientError(message, retry_after=retry_after)
        raise base.ProviderError(f"{NAME}: {message}", retryable=False)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _TransientError) and error.retry_after is not None:
            return min(error.retry_after, self._settings.retry.retry_after_cap_seconds)
        return self._backoff(state)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.2f s",
            NAME,
            state.attempt_number,
            self._settings.retry.max_attempts,
            error,
            wait,
        )

    def _server_message(self, response: httpx2.Response) -> str:
        """The server's own error message (OpenAI's `{"error": {"message": ...}}`, else
        the start of the body), shortened, and with the key removed: some servers echo
        the key they refused."""
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = None
        if not isinstance(message, str) or not message:
            message = response.text.strip() or response.reason_phrase
        message = message.replace(self._api_key, "[redacted]")
        return message[:MAX_MESSAGE_LENGTH]


def from_environment(
    *, settings: OpenAISettings, environ: Mapping[str, str] | None = None
) -> OpenAIProvider:
    """A provider whose key is read from `settings.api_key_env`; a missing key is a
    configuration error that names the variable."""
    environ = os.environ if environ is None else environ
    api_key = environ.get(settings.api_key_env, "")
    if not api_key:
        raise base.ConfigurationError(
            f"{NAME}: environment variable {settings.api_key_env} is empty or not set; "
            "it must hold the API key (mount the Secret as an environment variable)"
        )
    return OpenAIProvider(settings=settings, api_key=api_key)


def _image_bytes(response: httpx2.Response) -> bytes:
    try:
        encoded = response.json()["data"][0]["b64_json"]
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        # ValueError covers both bad JSON and bad base64 (binascii.Error).
        raise base.ProviderError(
            f"{NAME}: the response holds no image (expected data[0].b64_json)", retryable=False
        ) from error
