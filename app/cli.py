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
    w = (AppSimpleWorker if simple else AppWorker)([get_queue(n, conn) for n in names], connection=conn)
    w.flask_app = current_app._get_current_object()  # type: ignore[attr-defined]
    w.work(burst=burst, logging_level=current_app.config["LOG_LEVEL"], with_scheduler=True)


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
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
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
