"""Shared benchmark plumbing: services, a sandbox in its own process, an app, a connected portal."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def services():
    """PostgreSQL and Redis: BENCH_DATABASE_URL / BENCH_REDIS_URL when set, embedded ones otherwise."""
    from devtools import services as embedded

    svc = embedded.from_env_or_embedded("bench", "BENCH_DATABASE_URL", "BENCH_REDIS_URL", database="hub24_bench")
    try:
        yield svc
    finally:
        svc.stop()


@contextmanager
def sandbox_process(data_size: int, limits: str, cost_sleep: float = 0.0, latency_ms: float = 0.0):
    """`python -m sandbox` in its own process (so it does not share a core's GIL with Hub24)."""
    port = free_port()
    args = [sys.executable, "-m", "sandbox", "--port", str(port), "--data-size", str(data_size), "--limits", limits,
            "--cost-sleep", str(cost_sleep), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            r = requests.post(f"{base}/sandbox/portals", json={}, timeout=2)
            if r.status_code == 200 and r.json():  # serving, and the first portal is seeded
                break
            time.sleep(0.2)
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("sandbox did not start")
    try:
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def make_app(svc, oauth_base: str):
    from app import create_app

    return create_app({
        "DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url, "SECRET_KEY": "bench-" + "k" * 40,
        "TOKEN_ENCRYPTION_KEY": os.environ.get("BENCH_FERNET_KEY") or Fernet.generate_key().decode(),
        "B24_ALLOW_HTTP": "true", "B24_OAUTH_URL": f"{oauth_base}/oauth", "LOG_LEVEL": "WARNING",
    })


def migrate(app) -> None:
    from alembic import command

    from app.cli import alembic_config

    with app.app_context():
        command.upgrade(alembic_config(), "heads")


def webhook_portal(app, base: str, plan: str = "standard"):
    """A portal row connected to the sandbox's first portal by an incoming webhook (fresh schema).

    `plan` is what an administrator would set with `flask portal plan`: ``unlimited`` for a sandbox on
    ``--limits off`` (an on-premise Bitrix24 without the REST limit), so Hub24 does not pace itself.
    """
    from sandbox.client import Portal as SandboxPortal

    from app.db import db_session
    from app.models import ConnectionKind, Portal, PortalStatus
    from app.sync.schema import drop_portal_schema

    sb = SandboxPortal(base)
    info = sb.info()
    hook = sb.create_webhook(1, ["crm", "user", "department"])
    with app.app_context():
        s = db_session()
        old = s.query(Portal).filter_by(member_id=info["member_id"]).one_or_none()
        if old is not None:
            drop_portal_schema(s.connection(), old.id)
            s.delete(old)
            s.commit()
        p = Portal(member_id=info["member_id"], domain=info["domain"], status=PortalStatus.active, plan=plan,
                   connection_kind=ConnectionKind.webhook, webhook_url=hook["url"], client_endpoint=info["client_endpoint"])
        s.add(p)
        s.commit()
        return p.id, sb, hook["url"]


class PeakRss:
    """Peak resident memory of this process (sampled) while the block runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._proc = psutil.Process()

    def __enter__(self):
        import threading

        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, self._proc.memory_info().rss)
                time.sleep(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def line(name: str, **values) -> str:
    parts = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    out = f"BENCH {name} {parts}"
    print(out, flush=True)
    return out
