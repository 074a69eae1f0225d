"""The Redis leaky bucket: plan numbers with a margin, reservations in order, web callers never blocked."""
from __future__ import annotations

import pytest

from app.bitrix.errors import RateLimited
from app.bitrix.ratelimit import Limits, RateLimiter, limiter_for


def test_plan_limits_keep_a_margin_below_bitrix24():
    std, ent = Limits.for_plan("standard"), Limits.for_plan("enterprise")
    assert 1.9 <= std.rate < 2.0 and 40 <= std.capacity < 50
    assert 4.75 <= ent.rate < 5.0 and 200 <= ent.capacity < 250
    assert Limits.for_plan(None) == std and Limits.for_plan("unknown") == std


def test_burst_then_reservations_at_the_drain_rate(redis_conn):
    lim = RateLimiter(redis_conn, "m-burst", Limits(rate=2.0, capacity=5))
    assert [lim.try_acquire(max_wait=None) for _ in range(5)] == [(True, 0.0)] * 5
    waits = [lim.try_acquire(max_wait=None)[1] for _ in range(4)]
    # each reservation is half a second after the previous one (2 per second), give or take Redis time
    assert waits == sorted(waits)
    assert [round(b - a, 1) for a, b in zip(waits, waits[1:])] == [0.5, 0.5, 0.5]
    assert 0.4 < waits[0] <= 0.5


def test_web_callers_get_the_wait_reported_and_take_nothing(redis_conn):
    lim = RateLimiter(redis_conn, "m-web", Limits(rate=1.0, capacity=2), sleep=pytest.fail)
    lim.acquire(max_wait=0)
    lim.acquire(max_wait=0)
    level = lim.level()
    granted, wait = lim.try_acquire(max_wait=0.0)
    assert not granted and 0.5 < wait <= 1.0
    assert lim.level() <= level  # nothing was taken
    with pytest.raises(RateLimited) as exc:
        lim.acquire(max_wait=0.1)
    assert exc.value.retry_after > 0.1


def test_acquire_sleeps_for_its_reservation(redis_conn):
    slept = []
    lim = RateLimiter(redis_conn, "m-job", Limits(rate=10.0, capacity=1), sleep=slept.append)
    assert lim.acquire() == 0.0
    lim.acquire()
    assert len(slept) == 1 and 0.05 < slept[0] <= 0.1


def test_fill_after_an_unexpected_503(redis_conn):
    lim = limiter_for(redis_conn, "m-fill", "standard")
    lim.fill()
    granted, wait = lim.try_acquire(max_wait=0)
    assert not granted and wait > 0


def test_buckets_are_per_portal(redis_conn):
    a = RateLimiter(redis_conn, "m-a", Limits(rate=1.0, capacity=1))
    b = RateLimiter(redis_conn, "m-b", Limits(rate=1.0, capacity=1))
    assert a.try_acquire()[0] and b.try_acquire()[0]
    assert not a.try_acquire()[0]
