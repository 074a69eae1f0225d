"""Flask commands for portal connections: `flask portal connect|reconcile|list|plan|api-key` and `flask doctor`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from .ratelimit import PLAN_NAMES


@click.group("portal")
def portal_group() -> None:
    """Portals Hub24 is connected to."""


@portal_group.command("connect")
@click.argument("url")
@with_appcontext
def portal_connect(url: str) -> None:
    """Connect a portal by its incoming-webhook URL (https://<portal>/rest/<user>/<code>/)."""
    from .connect import WebhookUrlError, connect_webhook
    from .errors import BitrixError

    try:
        c = connect_webhook(url)
    except WebhookUrlError as exc:
        raise click.ClickException(str(exc)) from None
    except BitrixError as exc:
        raise click.ClickException(f"the portal did not accept the webhook: {exc.code or 'error'} "
                                   f"{exc.description}".strip()) from None
    click.echo(f"{'connected' if c.created else 'updated'} portal {c.domain} (id {c.portal_id}) by webhook of user "
               f"{c.user_id}{' (administrator)' if c.admin else ''}; scopes: {', '.join(c.scopes) or 'none'}")
    click.echo("sync, charts and users work on it; events, robots and placements need Hub24 installed as an app")


@portal_group.command("reconcile")
@click.argument("portal")
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@with_appcontext
def portal_reconcile(portal: str, dry_run: bool) -> None:
    """Bring PORTAL's events, placements and robots in line with manifest.json."""
    from .doctor import find
    from .errors import BitrixError, NotAvailableForWebhook
    from .reconcile import reconcile

    row = find(portal)
    if row is None:
        raise click.ClickException(f"no portal {portal!r}")
    try:
        report = reconcile(row.id, dry_run=dry_run)
    except NotAvailableForWebhook as exc:
        raise click.ClickException(f"{row.domain}: {exc.description}") from None
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    except BitrixError as exc:
        raise click.ClickException(f"{row.domain}: {exc}") from None
    for key, items in report.as_dict().items():
        for item in items:
            click.echo(f"{'would ' if dry_run and key != 'skipped' else ''}{key[:-1] if key.endswith('d') else key}"
                       f" {item}")
    if not report.changed:
        click.echo(f"{row.domain}: already in line with manifest.json")


@portal_group.command("list")
@with_appcontext
def portal_list() -> None:
    """Every portal with its connection kind and status."""
    from ..db import db_session
    from ..models import Portal

    for p in db_session().scalars(select(Portal).order_by(Portal.id)):
        click.echo(f"{p.id}\t{p.domain}\t{p.member_id}\t{p.connection_kind.value}\t{p.status.value}")


@portal_group.command("plan")
@click.argument("portal")
@click.argument("plan", type=click.Choice(PLAN_NAMES))
@with_appcontext
def portal_plan(portal: str, plan: str) -> None:
    """Set PORTAL's request-rate plan: standard (2/s, burst 50), enterprise (5/s, 250), or unlimited for an
    on-premise Bitrix24 whose REST limit is off. Installed apps learn standard/enterprise from app.info."""
    from ..db import db_session
    from .doctor import find
    from .ratelimit import Limits, limiter_for

    row = find(portal)
    if row is None:
        raise click.ClickException(f"no portal {portal!r}")
    row.plan = plan
    db_session().commit()
    from flask import current_app

    limiter_for(current_app.extensions["redis"], row.member_id, plan).reset()  # start the new bucket empty
    limits = Limits.for_plan(plan)
    click.echo(f"{row.domain}: plan {plan} (" + (f"Hub24 sends up to {limits.rate:.2f} requests/s, bursts of "
                                                 f"{int(limits.capacity)})" if limits.enabled else "no request limit)"))


@portal_group.command("api-key")
@click.argument("portal")
@click.option("--name", required=True, help="What the key is for (shown in lists), e.g. 'BI export'.")
@with_appcontext
def portal_api_key(portal: str, name: str) -> None:
    """Create an API key for PORTAL's /api/v1 (shown once; only its hash is stored)."""
    from ..api.auth import create_api_key
    from ..db import db_session
    from .doctor import find

    row = find(portal)
    if row is None or not row.is_installed:
        raise click.ClickException(f"no installed portal {portal!r}")
    key = create_api_key(row, name)
    db_session().commit()
    click.echo(f"API key for {row.domain} ({name}); send it as 'Authorization: Bearer <key>'. It is shown only now:")
    click.echo(key)


@click.command("doctor")
@click.argument("portal", required=False)
@with_appcontext
def doctor(portal: str | None) -> None:
    """Check PORTAL (id, member_id or domain; default: every portal) and say what to fix."""
    from ..db import db_session
    from ..models import Portal
    from .doctor import diagnose, find

    if portal:
        row = find(portal)
        if row is None:
            raise click.ClickException(f"no portal {portal!r}: see `flask portal list`")
        ids = [row.id]
    else:
        ids = list(db_session().scalars(select(Portal.id).order_by(Portal.id)))
        if not ids:
            click.echo("no portals yet: install Hub24 in a portal, or `flask portal connect URL`")
            return
    problems = 0
    for pid in ids:
        for finding in diagnose(pid):
            problems += not finding.ok
            click.echo(finding.line())
    if problems:
        raise SystemExit(1)


def init_app(app) -> None:
    app.cli.add_command(portal_group)
    app.cli.add_command(doctor)
