"""Many processes, one portal: a single refresh for sixteen workers, and the shared rate limit.

Workers are separate processes (`python -m tests.bitrix.worker`) with their own app, database pool and
Redis connection, as RQ work horses are. Every number asserted is counted by the sandbox (its request
log and its own limiter), never a wall-clock time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from redis import Redis

from tests.sandbox_fixtures import settings_for

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_DB = 9  # concurrent test sessions of this checkout share the embedded Redis and flush db 0


@pytest.fixture()
def private_redis(b24_base_settings):
    """A Redis database of these tests' own (a flush by another session must not reset the rate limiter)."""
    url = b24_base_settings["REDIS_URL"]
    base, _, query = url.partition("?")
    query = urlencode({**dict(parse_qsl(query)), "db": str(PRIVATE_DB)})
    if not base.startswith("unix://"):
        scheme_host = base.split("://", 1)
        base = f"{scheme_host[0]}://{scheme_host[1].split('/', 1)[0]}/{PRIVATE_DB}"
    url = f"{base}?{query}"
    conn = Redis.from_url(url)
    conn.flushdb()
    yield url, conn
    conn.flushdb()
    conn.close()


def _spawn(n: int, mode: str, portal_id: int, amount: float, settings: dict, redis_conn,
           before_go=lambda: None) -> list[dict]:
    """Start `n` workers, wait until each has its client, run `before_go`, release them all, collect."""
    ready, go = f"test:ready:{uuid.uuid4().hex}", f"test:go:{uuid.uuid4().hex}"
    env = {**os.environ, **{k: str(v) for k, v in settings.items()}, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.bitrix.worker", mode, str(portal_id), ready, go,
                               str(amount)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    try:
        deadline = time.monotonic() + 120
        while int(redis_conn.get(ready) or 0) < n:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), "\n".join(p.communicate()[1][-4000:] for p in procs if p.poll() is not None)
            time.sleep(0.05)
        before_go()
        redis_conn.rpush(go, *["go"] * n)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, (stdout, stderr[-3000:])
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_sixteen_workers_one_refresh(b24_app, b24_sandbox, b24_settings, installed_portal, private_redis):
    redis_url, redis_conn = private_redis
    portal = installed_portal(data_size=20, commit=True)
    log = b24_sandbox.log
    grants_before = len(log.refresh_grants())
    # every worker has loaded the token when the sandbox expires it
    results = _spawn(16, "refresh", portal.id, 3, {**b24_settings, "REDIS_URL": redis_url}, redis_conn,
                     before_go=portal.sandbox.expire_tokens)

    assert results == [{"ok": 3, "rate_limited": 0}] * 16  # every call of every worker succeeded
    grants = log.refresh_grants()[grants_before:]
    assert len(grants) == 1  # exactly one refresh reached the OAuth server
    assert [g["error"] for g in grants] == [None]  # and it was not invalid_grant
    rest = log.select("rest", host=portal.domain)
    assert sum(1 for e in rest if e["error"] == "expired_token") >= 1
    assert not any(e["error"] == "invalid_grant" for e in log.select("oauth"))
    # the stored token is the new one and works
    from app.bitrix.client import client_for
    from app.models.portal import Portal

    b24_app.extensions["db.session"]().expire_all()
    assert client_for(portal.id).call("profile")["ID"] == "1"
    assert b24_app.extensions["db.session"]().get(Portal, portal.id).needs_reinstall is False


@pytest.mark.slow
def test_four_processes_share_the_standard_limit(b24_app, make_b24_sandbox, b24_base_settings, installed_portal,
                                                 private_redis):
    redis_url, redis_conn = private_redis
    handle = make_b24_sandbox(limits="standard", data_size=0)
    portal = installed_portal(handle=handle, commit=True)
    state = portal.state
    settings = {**settings_for(b24_base_settings, handle, handle.registration), "REDIS_URL": redis_url}

    def start_clean():
        state.limiter.reset()
        handle.log.clear()
    results = _spawn(4, "rate", portal.id, 50, settings, redis_conn, before_go=start_clean)

    rest = handle.log.select("rest", host=portal.domain)
    params = state.limiter.params()
    assert params["drain_per_second"] == 2.0 and params["threshold"] == 50
    assert state.limiter.rejected_rate == 0  # the sandbox never had to refuse a request
    assert [e for e in rest if e["status"] == 503] == []
    assert all(r["rate_limited"] == 0 for r in results)
    admitted = len(rest)
    assert admitted == sum(r["ok"] for r in results)
    elapsed = rest[-1]["at"] - rest[0]["at"]  # the sandbox's own clock
    allowed = params["threshold"] + params["drain_per_second"] * elapsed  # most a leaky bucket admits
    used = admitted / allowed
    print(f"admitted {admitted} of {allowed:.0f} allowed: {used:.1%}")
    assert used >= 0.90
