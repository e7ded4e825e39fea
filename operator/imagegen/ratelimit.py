"""GCRA (the generic cell rate algorithm) in Redis: one atomic Lua call per decision.

A limit is "`per_minute` on average, up to `burst` at once". GCRA keeps one number per
limit, the theoretical arrival time (TAT) of the next request; a request of cost c is
admitted when TAT + c*T - burst*T <= now, with T = 60 s / per_minute. Several limits are
decided together (requests and images of one submission): the call admits only when every
limit admits, and then charges them all, so a refused request costs nothing.

Time is Redis's own (TIME, read inside the script): every gateway replica shares the
decision through Redis, so one replica whose clock runs fast must not refill the limits
for everyone (nor one that runs slow refuse everything). Tests may pass `now` to drive
time exactly. Keys are the caller's: in Redis Cluster all keys of one call must share a
hash tag.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from imagegen import redisconn

_MICROS = 1_000_000

# KEYS: one per limit. ARGV: now (µs; '' = Redis TIME), then per limit: interval (µs),
# burst, cost. Reply: admitted (1/0), then per limit: remaining, reset (µs until full),
# retry after (µs).
GCRA_LUA = """
local now = tonumber(ARGV[1])
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local admitted = 1
local state = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - interval * burst
  if allow_at > now then admitted = 0 end
  state[i] = {tat, new_tat, allow_at, interval, burst}
end
local reply = {admitted}
for i = 1, #KEYS do
  local s = state[i]
  local tat = s[1]
  local retry = 0
  if admitted == 1 then
    tat = s[2]
    local ttl = math.ceil((tat - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', ttl)
  elseif s[3] > now then
    retry = s[3] - now
  end
  reply[#reply + 1] = math.floor((now + s[4] * s[5] - tat) / s[4])
  reply[#reply + 1] = tat - now
  reply[#reply + 1] = retry
end
return reply
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limit:
    """One limit to decide on: its Redis key, its rate and burst, and what this request costs."""

    key: str
    per_minute: int
    burst: int
    cost: int = 1

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1 or self.cost < 1:
            raise ValueError(f"{self.key}: per_minute, burst and cost must be >= 1")

    @property
    def interval_micros(self) -> int:
        """T: the time one unit of the limit takes to come back."""
        return 60 * _MICROS // self.per_minute

    @property
    def window_seconds(self) -> int:
        """Time for an empty limit to refill completely: burst * T."""
        return math.ceil(self.burst * self.interval_micros / _MICROS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """Where one limit stands after the decision."""

    limit: Limit
    remaining: int
    """Units that could be spent now."""
    reset_seconds: float
    """Seconds until the limit is full again."""
    retry_after_seconds: float
    """Seconds until this request would be admitted; 0 when it was."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decision:
    """Admitted or not, and the state of every limit decided on."""

    admitted: bool
    outcomes: tuple[Outcome, ...]

    @property
    def retry_after_seconds(self) -> float:
        """When the slowest refusing limit will admit this request."""
        return max((outcome.retry_after_seconds for outcome in self.outcomes), default=0.0)


class RateLimiter:
    """Decides limits with one EVALSHA each (redis-py loads the script on first use)."""

    def __init__(self, *, redis: redisconn.Client) -> None:
        self._script = redis.register_script(GCRA_LUA)

    async def decide(self, limits: Sequence[Limit], *, now: float | None = None) -> Decision:
        """Admit the request only if every limit admits it; charge them all when admitted.

        `now` is seconds since the epoch (Redis's TIME when None; tests pass it). A limit
        whose cost exceeds its burst can never be admitted: callers refuse such requests
        themselves.
        """
        if not limits:
            raise ValueError("decide needs at least one limit")
        args: list[int | str] = ["" if now is None else round(now * _MICROS)]
        for limit in limits:
            args += [limit.interval_micros, limit.burst, limit.cost]
        reply = await self._script(keys=[limit.key for limit in limits], args=args)
        outcomes = tuple(
            Outcome(
                limit=limit,
                remaining=max(0, int(reply[1 + 3 * index])),
                reset_seconds=int(reply[2 + 3 * index]) / _MICROS,
                retry_after_seconds=int(reply[3 + 3 * index]) / _MICROS,
            )
            for index, limit in enumerate(limits)
        )
        return Decision(admitted=bool(int(reply[0])), outcomes=outcomes)
