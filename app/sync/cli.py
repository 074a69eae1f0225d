"""`flask sync ...`: run, watch and verify the CRM mirror from a terminal."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import or_, select
from tqdm import tqdm

from ..db import db_session
from ..models.portal import Portal


def find_portal(ref: str) -> Portal:
    """A portal by id, member_id or domain; raises click.BadParameter."""
    q = select(Portal).where(or_(Portal.member_id == ref, Portal.domain == ref,
                                 Portal.id == (int(ref) if ref.isdigit() else -1)))
    portal = db_session().scalar(q)
    if portal is None:
        raise click.BadParameter(f"no portal {ref!r} (give its id, member_id or domain)", param_hint="--portal")
    return portal


@click.group("sync")
def sync_group() -> None:
    """The CRM mirror: run syncs, show status, verify against the portal."""


@sync_group.command("run")
@click.option("--portal", "portal_ref", required=True, help="Portal id, member_id or domain.")
@click.option("--entity", "entities", multiple=True, help="deal, lead, contact, company, sp_<id>; default: all.")
@click.option("--full", "mode", flag_value="full", help="Read everything (resumes an interrupted full sync).")
@click.option("--incremental", "mode", flag_value="incremental", default=True, help="Only what changed (default).")
@click.option("--reconcile", "mode", flag_value="reconcile", help="Compare id sets and repair differences.")
@click.option("--restart", is_flag=True, help="With --full: ignore a saved cursor and start from the first id.")
@with_appcontext
def sync_run(portal_ref: str, entities: tuple[str, ...], mode: str, restart: bool) -> None:
    """Run a sync now, in this process, with a progress bar."""
    from .service import SyncRefused, open_sync, run_sync

    portal = find_portal(portal_ref)
    names = list(entities) or [s.name for s in open_sync(portal).entities()]
    failed = False
    for name in names:
        bar = tqdm(total=None, desc=f"{name} ({mode})", unit=" rows", dynamic_ncols=True)

        def progress(run, bar=bar) -> None:
            if run.total_expected and bar.total is None and run.cursor is not None:
                bar.total = run.total_expected
                bar.unit = " ids"
            bar.n = run.cursor if (bar.total and run.cursor is not None) else run.rows_read
            bar.set_postfix(written=run.rows_written, calls=run.calls_made)
            bar.refresh()

        try:
            run = run_sync(portal.id, name, mode, restart=restart, progress=progress)
        except SyncRefused as exc:
            bar.close()
            raise click.ClickException(str(exc)) from None
        if bar.total:
            bar.n = bar.total
        bar.close()
        click.echo(f"{name}: {run.status.value}: read {run.rows_read}, written {run.rows_written}, "
                   f"deleted {run.rows_deleted}, {run.calls_made} calls" + (f" — {run.error}" if run.error else ""))
        failed |= run.status.value != "succeeded"
    if failed:
        raise SystemExit(1)


@sync_group.command("status")
@click.option("--portal", "portal_ref", required=True)
@with_appcontext
def sync_status(portal_ref: str) -> None:
    """Settings, cursors and the latest runs per entity, as JSON."""
    from .service import status

    click.echo(json.dumps(status(find_portal(portal_ref).id), indent=2, ensure_ascii=False))


@sync_group.command("verify")
@click.option("--portal", "portal_ref", required=True)
@click.option("--entity", "entities", multiple=True)
@with_appcontext
def sync_verify(portal_ref: str, entities: tuple[str, ...]) -> None:
    """Compare the mirror with the portal row by row; exit 1 when they differ."""
    from .service import open_sync
    from .verify import compare

    sync = open_sync(find_portal(portal_ref))
    ok = True
    for spec in sync.entities():
        if entities and spec.name not in entities:
            continue
        result = compare(sync, spec)
        click.echo(result.summary())
        ok &= result.ok
    if not ok:
        raise SystemExit(1)
