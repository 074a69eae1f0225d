"""`flask users sync [--portal X]`: sync Hub24's user directory from Bitrix24 and print the report."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..db import db_session
from ..models.portal import Portal, PortalStatus


@click.group("users")
def users_group() -> None:
    """Hub24's own user and department directory."""


@users_group.command("sync")
@click.option("--portal", "portal_ref", default=None, help="Portal id, member_id or domain; default: every active portal.")
@click.option("--json", "as_json", is_flag=True, help="Print each run as JSON instead of text.")
@with_appcontext
def users_sync(portal_ref: str | None, as_json: bool) -> None:
    """Sync users and departments now, in this process, and print what changed."""
    from ..bitrix.errors import BitrixError
    from ..sync.cli import find_portal
    from .service import run_directory_sync

    if portal_ref:
        portals = [find_portal(portal_ref)]
    else:
        portals = list(db_session().scalars(select(Portal).where(Portal.status == PortalStatus.active)
                                            .order_by(Portal.id)))
        if not portals:
            click.echo("no active portals")
            return
    failed = False
    for portal in portals:
        try:
            run = run_directory_sync(portal.id, "cli")
        except BitrixError as exc:
            run = {"status": "failed", "error": str(exc), "report": {}}
        failed = failed or run["status"] != "succeeded"
        if as_json:
            click.echo(json.dumps({"portal": portal.domain, **run}, ensure_ascii=False, default=str))
            continue
        click.echo(f"{portal.domain} ({portal.member_id}): {run['status']}")
        if run["status"] != "succeeded":
            click.echo(f"  {run['error']}")
            continue
        from .sync import Report

        report = Report(**{k: v for k, v in run["report"].items() if k != "counts"})
        click.echo("  " + report.text().replace("\n", "\n  "))
    if failed:
        raise SystemExit(1)
