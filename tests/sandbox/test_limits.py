"""Leaky bucket, operating-time budget and the cost model."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from sandbox.limits import Limiter, list_cost


def test_sixty_at_once_gives_fifty_then_503(fresh_sandbox):
    h = fresh_sandbox(limits="standard")
    url = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"])) + "crm.deal.get"
    t0 = time.monotonic()
    with ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json={"id": 1}, timeout=30), range(60)))
    drained = int(2 * (time.monotonic() - t0)) + 1  # the bucket leaks 2/s while the burst is in flight
    ok = [r for r in answers if r.status_code == 200]
    limited = [r for r in answers if r.status_code == 503]
    assert len(ok) + len(limited) == 60
    assert 50 <= len(ok) <= 50 + drained
    assert {r.json()["error"] for r in limited} == {"QUERY_LIMIT_EXCEEDED"}


def test_bucket_drains_at_plan_rate():
    now = [0.0]
    lim = Limiter("standard", 480.0, clock=lambda: now[0])
    assert sum(lim.admit() for _ in range(60)) == 50
    assert not lim.admit()
    now[0] += 1.0  # two requests' worth leaks out per second
    assert [lim.admit() for _ in range(3)] == [True, True, False]
    now[0] += 25.0
    assert sum(lim.admit() for _ in range(60)) == 50
    ent = Limiter("enterprise", 480.0, clock=lambda: now[0])
    assert sum(ent.admit() for _ in range(300)) == 250
    off = Limiter("off", 480.0)
    assert all(off.admit() for _ in range(500))
    assert lim.params()["drain_per_second"] == 2.0 and lim.params()["threshold"] == 50


def test_operating_budget_blocks_until_buckets_expire():
    wall = [1_000_000.0]
    lim = Limiter("standard", 10.0, clock=lambda: 0.0, wall=lambda: wall[0])
    key = "hook:1:x"
    for _ in range(11):
        assert lim.check_operating("crm.deal.list", key)
        lim.charge("crm.deal.list", key, 1.0)
    assert not lim.check_operating("crm.deal.list", key)
    assert lim.check_operating("crm.deal.get", key)  # other methods are unaffected
    assert lim.check_operating("crm.deal.list", "app:other")  # and other apps too
    used, reset_at = lim.operating("crm.deal.list", key)
    assert used == 11.0 and reset_at == int(1_000_000 + 600)
    wall[0] += 599
    assert not lim.check_operating("crm.deal.list", key)
    wall[0] += 2
    assert lim.check_operating("crm.deal.list", key)


def test_operating_429_over_http_and_time_block(fresh_sandbox):
    h = fresh_sandbox(limits="standard", operating_limit=0.05)
    url = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"]))
    statuses = []
    for _ in range(30):
        r = requests.post(url + "crm.deal.get", json={"id": 1}, timeout=10)
        statuses.append(r.status_code)
        if r.status_code == 200:
            t = r.json()["time"]
            assert t["operating"] > 0 and t["operating_reset_at"] > t["start"]
    assert 200 in statuses and statuses[-1] == 429
    r = requests.post(url + "crm.deal.get", json={"id": 1}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (429, "OPERATION_TIME_LIMIT")
    assert requests.post(url + "crm.contact.get", json={"id": 1}, timeout=10).status_code == 200


def test_cost_model_counted_page_far_dearer_than_keyset():
    rows = 2_387_743
    counted = list_cost(rows, counted=True, keyset=False, scanned=rows)
    keyset = list_cost(rows, counted=False, keyset=True, scanned=50)
    assert 45 < counted < 55 and keyset < 0.2
    assert list_cost(1000, True, False, 1000) < counted


def test_batch_is_one_request_and_nested_calls_charge_their_methods(fresh_sandbox):
    h = fresh_sandbox(limits="standard")
    url = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"]))
    cmd = {str(i): f"crm.deal.get?id={i + 1}" for i in range(50)}
    r = requests.post(url + "batch", json={"cmd": cmd}, timeout=10)
    assert r.status_code == 200 and len(r.json()["result"]["result"]) == 50
    assert h.portal.limiter.level <= 1.0
    used, _ = h.portal.limiter.operating("crm.deal.get", f"hook:1:{url.rstrip('/').rsplit('/', 1)[1]}")
    assert used > 0
    assert h.portal.limiter.operating("batch", f"hook:1:{url.rstrip('/').rsplit('/', 1)[1]}")[0] == 0
