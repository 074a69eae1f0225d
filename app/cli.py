"""Flask commands: worker, cron, db (migrations), keys (encryption-key rotation).

Later subsystems add their own groups (sync, users, portal, doctor) through their `init_app`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

ROOT = Path(__file__).resolve().parent.parent


def init_app(app: Flask) -> None:
    app.cli.add_command(worker)
    app.cli.add_command(cron)
    app.cli.add_command(db_group)
    app.cli.add_command(keys_group)
    from .sync.cli import sync_group

    app.cli.add_command(sync_group)
    from .users.cli import users_group

    app.cli.add_command(users_group)
    from .bitrix import cli as bitrix_cli

    bitrix_cli.init_app(app)  # portal connect|reconcile|list, doctor


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--simple", is_flag=True, help="Run jobs in the worker process (no fork); for debugging.")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool, simple: bool) -> None:
    """Run an RQ worker on QUEUES (default: all Hub24 queues, in priority order)."""
    from .jobs import QUEUES, AppSimpleWorker, AppWorker, get_queue, redis_connection

    names = queues or QUEUES
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; choose from {', '.join(QUEUES)}")
    conn = redis_connection()
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def make():
        # Maintenance every minute instead of RQ's ten: it is what re-acquires the scheduler lock after a
        # Redis restart (without it, retries scheduled with RETRY_* wait up to ten minutes) and requeues jobs
        # whose worker died. It runs under a lock, so one worker of many does it.
        # An idle worker blocks in its dequeue for worker_ttl - 15 s before it looks at maintenance again,
        # so the TTL is shortened to match.
        w = (AppSimpleWorker if simple else AppWorker)([get_queue(n, conn) for n in names], connection=conn,
                                                       maintenance_interval=WORKER_MAINTENANCE_S,
                                                       worker_ttl=WORKER_MAINTENANCE_S + 15)
        w.flask_app = app
        return w

    run_worker(make, conn, burst=burst, logging_level=app.config["LOG_LEVEL"])


WORKER_MAINTENANCE_S = 60


def run_worker(make, conn, *, burst: bool = False, logging_level: str = "INFO") -> None:
    """Run RQ workers from `make()` until asked to stop, starting a fresh one whenever Redis went away.

    RQ's work loop quits on the first Redis error it meets outside its dequeue (while monitoring a job,
    heartbeating, cleaning registries), so a Redis restart used to leave the process exiting and nothing
    working the queues. Here the process waits for the job it was running to end (the work horse does its
    own bookkeeping), waits for Redis to answer, and starts a new worker; SIGTERM/SIGINT still stop it.
    """
    import os
    import signal
    import time

    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    log = logging.getLogger("hub24.worker")
    stop = {"requested": False}

    def _stop(signum, frame):  # noqa: ARG001
        stop["requested"] = True

    while True:
        w = None
        try:
            w = make()  # registers its name in Redis: fails while Redis is down
            w.work(burst=burst, logging_level=logging_level, with_scheduler=True)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("worker lost Redis: %s", exc)
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if burst or stop["requested"] or getattr(w, "_stop_requested", False) \
                or getattr(w, "_shutdown_requested_date", None) is not None:
            return
        horse = getattr(w, "horse_pid", 0) or 0
        if horse:
            try:  # the job in flight finishes (or fails) on its own; do not start a second one beside it
                os.waitpid(horse, 0)
            except ChildProcessError:
                pass
        delay = 0.5
        time.sleep(1.0)  # never spin: whatever made the loop quit gets a moment to pass
        while not stop["requested"]:
            try:
                conn.ping()
                break
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        if stop["requested"]:
            return
        log.warning("Redis is back: starting a new worker")


@click.command("cron")
@with_appcontext
def cron() -> None:
    """Run RQ's cron scheduler with Hub24's periodic jobs (app/jobs.py: periodic_jobs)."""
    from .jobs import build_cron, redis_connection

    logging.getLogger("rq.cron").setLevel(current_app.config["LOG_LEVEL"])
    build_cron(redis_connection()).start()


@click.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


def alembic_config():
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


@db_group.command("upgrade")
@click.argument("revision", default="heads")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: every head)."""
    from alembic import command

    command.upgrade(alembic_config(), revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (e.g. base)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the current revision."""
    from alembic import command

    command.current(alembic_config())


@click.group("keys")
def keys_group() -> None:
    """Encryption keys for secrets at rest."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the newest TOKEN_ENCRYPTION_KEY."""
    from .secrets_rotation import rotate_all

    n = rotate_all()
    click.echo(f"re-encrypted {n} secret value(s) with the newest key")
