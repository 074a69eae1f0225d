"""`make run`'s orchestrator: starts everything, reports healthy, refuses a second copy, stops cleanly."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_run(env_extra: dict) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "devtools.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Hub24 is running" in line:
            return proc, lines
    proc.kill()
    raise AssertionError("make run did not print its URL:\n" + "".join(lines[-40:]))


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_and_check_clean(proc: subprocess.Popen) -> None:
    kids = descendants(proc.pid)
    assert kids, "the orchestrator should have child processes while running"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "[hub24] stopped" in out
    time.sleep(0.5)
    alive = [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]


def test_make_run_with_embedded_services(tmp_path):
    port = free_port()
    proc, lines = start_run({"PORT": str(port), "SANDBOX_PORT": str(free_port()), "XDG_CONFIG_HOME": str(tmp_path)})
    try:
        url = f"http://127.0.0.1:{port}"
        assert any(url in line for line in lines)
        health = requests.get(url + "/health", timeout=10)
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["postgres"]["up"] and body["redis"]["up"] and body["workers"]["alive"] >= 1
        # A second copy from the same checkout refuses instead of sharing state.
        second = subprocess.run([sys.executable, "-m", "devtools.run"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={**os.environ, "PORT": str(free_port())})
        assert second.returncode == 1
        assert "already running" in second.stdout
        pg = [p for p in psutil.process_iter(["cmdline"]) if "var/dev/pgdata" in " ".join(p.info["cmdline"] or [])]
        assert pg, "embedded PostgreSQL should run under var/dev"
    finally:
        stop_and_check_clean(proc)
    pg = [p for p in psutil.process_iter(["cmdline"]) if "var/dev/pgdata" in " ".join(p.info["cmdline"] or [])]
    assert pg == []


def test_make_run_with_given_services_writes_nothing_under_var(service_urls, throwaway_database, tmp_path):
    var_dev = ROOT / "var" / "dev"
    existed = var_dev.exists()
    before = sorted(p.name for p in var_dev.rglob("*")) if existed else None
    port = free_port()
    proc, _ = start_run({"PORT": str(port), "SANDBOX_PORT": str(free_port()), "XDG_CONFIG_HOME": str(tmp_path),
                         "DATABASE_URL": throwaway_database, "REDIS_URL": service_urls["redis"]})
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        stop_and_check_clean(proc)
    if existed:
        assert sorted(p.name for p in var_dev.rglob("*")) == before
    else:
        assert not var_dev.exists()


def test_embedded_redis_is_stopped_for_good():
    from devtools import services

    svc = services.start("redis-stop-check", "unused", postgres=False)
    pid = svc._redis.pid
    svc.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
