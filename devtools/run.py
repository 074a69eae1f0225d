"""`make run`: everything Hub24 needs on one machine, stopped cleanly with Ctrl-C.

Order: lock (one instance at a time) -> services (embedded when DATABASE_URL / REDIS_URL are unset) ->
migrations -> sandbox portal with demo data -> web app, worker, scheduler -> wait for /health ->
print the URL. Any child that dies takes the whole run down with a message; Ctrl-C stops children
first, then the embedded services, so no process is left behind.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from . import services
from .secrets import dev_secrets

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def say(msg: str) -> None:
    print(f"[hub24] {msg}", flush=True)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def acquire_lock():
    """One `make run` per checkout: a second one is told so instead of sharing var/ state."""
    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"hub24-run-{tag}.lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        info = fh.read().strip() or "unknown"
        say(f"Hub24 is already running from this checkout ({info}). Stop it with Ctrl-C in its terminal first.")
        sys.exit(1)
    fh.seek(0)
    fh.truncate()
    return fh


class Children:
    """Child processes, each in its own session so shutdown order is ours, not the terminal's."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def dead(self) -> list[tuple[str, int]]:
        return [(n, p.returncode) for n, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 15
        for _, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def wait_http(url: str, timeout: float, ok=lambda r: r.status_code < 500, children: Children | None = None) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if children and children.dead():
            return False
        try:
            if ok(requests.get(url, timeout=2)):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


def main() -> int:
    lock = acquire_lock()
    port = int(os.environ.get("PORT", "5000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", str(port + 100)))
    for p, var in ((port, "PORT"), (sandbox_port, "SANDBOX_PORT")):
        if not port_free(p):
            say(f"port {p} is in use; set {var} to a free port")
            return 1
    base_url = os.environ.get("APP_BASE_URL") or f"http://127.0.0.1:{port}"
    lock.write(f"pid {os.getpid()}, {base_url}")
    lock.flush()

    stop_requested = False

    def _stop(signum, frame):  # noqa: ARG001
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    env = dict(os.environ)
    for k, v in dev_secrets().items():
        env.setdefault(k, v)
    svc = services.from_env_or_embedded("dev", "DATABASE_URL", "REDIS_URL")
    if svc._pg is not None or svc._redis is not None:
        say("started embedded " + " and ".join(n for n, s in (("PostgreSQL", svc._pg), ("Redis", svc._redis)) if s) + " under var/dev")
    env.update(DATABASE_URL=svc.database_url, REDIS_URL=svc.redis_url, APP_BASE_URL=base_url)
    env.setdefault("LOG_LEVEL", "INFO")
    children = Children()
    try:
        say("applying migrations")
        subprocess.run([PY, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True)
        from .portal import start_demo_portal

        env.update(start_demo_portal(children, env, sandbox_port, say))
        children.start("web", [PY, "-m", "gunicorn", "wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "2",
                               "--threads", "4", "--graceful-timeout", "5", "--log-level", "warning"], env)
        children.start("worker", [PY, "-m", "flask", "--app", "wsgi", "worker"], env)
        children.start("scheduler", [PY, "-m", "flask", "--app", "wsgi", "cron"], env)
        healthy = wait_http(f"http://127.0.0.1:{port}/health", 90, ok=lambda r: r.status_code == 200, children=children)
        if not healthy:
            say("Hub24 did not become healthy: " + ", ".join(f"{n} exited {c}" for n, c in children.dead())
                if children.dead() else "Hub24 did not become healthy within 90 s; see the logs above")
            return 1
        from .portal import after_start

        portal_page = after_start(env, base_url, say)
        where = portal_page or base_url
        say(f"Hub24 is running: open {where}  (health: {base_url}/health). Ctrl-C stops everything.")
        while not stop_requested:
            dead = children.dead()
            if dead:
                say("stopping: " + ", ".join(f"{n} exited with code {c}" for n, c in dead))
                return 1
            time.sleep(0.5)
        say("stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        say(f"set-up step failed: {' '.join(map(str, exc.cmd[2:]))} (exit {exc.returncode})")
        return 1
    finally:
        children.stop()
        svc.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
