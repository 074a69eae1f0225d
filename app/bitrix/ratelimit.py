"""Per-portal leaky bucket in Redis, shared by every web and worker process on every machine.

Bitrix24 counts every request to a portal in a bucket that drains at Y per second and answers 503
``QUERY_LIMIT_EXCEEDED`` once it holds X (PROTOCOL.md §4.1: standard 2/s and 50, enterprise 5/s and 250;
a batch is one request). Hub24 keeps its own copy of that bucket per portal in Redis, a little smaller
and draining a little slower (`SAFETY`), and asks it before each request, so the portal's bucket never
overflows and Hub24 does not earn 503s in the first place.

The bucket is one Lua script (atomic in Redis) on Redis' own clock, so processes on different machines
agree. It works by reservation: a caller that may wait takes the next free slot at once, even in the
future, and sleeps until then; callers are served in arrival order and the bucket drains at full rate.
A caller that may not wait long (a web request) takes a slot only when it is free soon enough, and
otherwise gets the wait reported, so it can answer "try again" instead of blocking a web worker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from redis import Redis

from .errors import RateLimited

# plan -> (drain per second, capacity): Bitrix24's numbers (PROTOCOL.md §4.1). `unlimited` is an on-premise
# Bitrix24 whose administrator left the REST limit off (its default, §4.2): Hub24 keeps no bucket for it.
PLANS: dict[str, tuple[float, int]] = {"standard": (2.0, 50), "enterprise": (5.0, 250)}
UNLIMITED = "unlimited"
PLAN_NAMES = (*PLANS, UNLIMITED)
# Hub24 uses 97% of the drain rate and 84% of the capacity: room for requests that arrive at the portal
# slightly bunched (network jitter) and for clock differences, while still using >90% of the allowance.
SAFETY_RATE = 0.97
SAFETY_BURST = 0.84
KEY_PREFIX = "hub24:ratelimit:"

# KEYS[1] bucket hash; ARGV: rate/s, capacity, cost, max wait in seconds (-1 = any).
# Returns {granted 0|1, wait seconds as a string}. The level may exceed capacity by reservations: a slot
# granted with wait w starts its request w seconds from now, when the level is back under capacity.
_LUA = """
pcall(redis.replicate_commands)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'ts') or tostring(now))
if now > last then
  level = math.max(0, level - (now - last) * rate)
else
  now = last
end
local wait = 0
if level + cost > capacity then
  wait = (level + cost - capacity) / rate
end
if max_wait >= 0 and wait > max_wait then
  redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[1], 3600)
  return {0, tostring(wait)}
end
level = level + cost
redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return {1, tostring(wait)}
"""

_FILL_LUA = """
pcall(redis.replicate_commands)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'ts') or tostring(now))
if now > last then level = math.max(0, level - (now - last) * rate) else now = last end
if level < capacity then level = capacity end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(level)
"""


@dataclass(frozen=True)
class Limits:
    """The bucket Hub24 keeps for one portal: drain `rate` per second, `capacity` requests."""

    rate: float
    capacity: float
    enabled: bool = True

    @classmethod
    def for_plan(cls, plan: str | None) -> "Limits":
        """Hub24's bucket for a Bitrix24 plan (`Portal.plan`; unknown plans get the standard numbers)."""
        name = (plan or "standard").lower()
        if name == UNLIMITED:
            return cls(rate=0.0, capacity=0.0, enabled=False)
        rate, burst = PLANS.get(name, PLANS["standard"])
        return cls(rate=rate * SAFETY_RATE, capacity=max(1.0, float(int(burst * SAFETY_BURST))))

    @property
    def burst(self) -> int | None:
        """Requests Hub24 may have in flight at once without waiting (None: no limit)."""
        return int(self.capacity) if self.enabled else None


class RateLimiter:
    """The leaky bucket of one portal (`key`, usually its member_id) in Redis."""

    def __init__(self, redis: Redis, key: str, limits: Limits, *, sleep: Callable[[float], None] = time.sleep):
        self.redis = redis
        self.key = KEY_PREFIX + key
        self.limits = limits
        self._sleep = sleep
        self._script = redis.register_script(_LUA)
        self._fill = redis.register_script(_FILL_LUA)

    def try_acquire(self, cost: float = 1.0, max_wait: float = 0.0) -> tuple[bool, float]:
        """Take a slot if one is free within `max_wait` seconds. Returns (granted, wait seconds).

        Granted with wait > 0 means the slot is reserved `wait` seconds from now: the caller must sleep
        that long before sending. Not granted means nothing was taken; `wait` says when to try again.
        """
        if not self.limits.enabled:
            return True, 0.0
        granted, wait = self._script(keys=[self.key], args=[self.limits.rate, self.limits.capacity, cost,
                                                            -1 if max_wait is None else max_wait])
        return bool(int(granted)), float(wait)

    def acquire(self, cost: float = 1.0, max_wait: float | None = None) -> float:
        """Wait for a slot and take it; returns the seconds slept.

        `max_wait=None` waits as long as needed (jobs). With a number, raises RateLimited (with
        `retry_after`) instead of waiting longer than that (web requests).
        """
        granted, wait = self.try_acquire(cost, max_wait)
        if not granted:
            raise RateLimited("QUERY_LIMIT_EXCEEDED", "Hub24's request budget for this portal is used up; "
                              "try again shortly", retry_after=max(wait, 0.1))
        if wait > 0:
            self._sleep(wait)
        return wait

    def fill(self) -> None:
        """Mark the bucket full (after an unexpected 503: someone else is using this portal's budget)."""
        if not self.limits.enabled:
            return
        self._fill(keys=[self.key], args=[self.limits.capacity, self.limits.rate])

    def level(self) -> float:
        """The bucket's current level as last written (for doctor and tests; not drained to now)."""
        raw = self.redis.hget(self.key, "level")
        return float(raw) if raw is not None else 0.0

    def reset(self) -> None:
        """Forget the bucket (tests, and after a portal changes plan)."""
        self.redis.delete(self.key)


def limiter_for(redis: Redis, member_id: str, plan: str | None) -> RateLimiter:
    """The shared limiter of a portal, sized for its plan."""
    return RateLimiter(redis, member_id, Limits.for_plan(plan))
