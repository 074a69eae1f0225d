"""Directory sync runs: one surface for the API, the CLI, the scheduler and ONUSERADD.

`run_directory_sync` reads the portal (no database transaction held during the calls), applies the rules
(`sync.apply_users`, `sync.apply_departments`), and records a `DirectoryRun` with the report. The jobs
(`sync_directory`) take ids; failures that a retry can fix raise, so RQ's policy retries them; a portal that
needs reinstalling or lacks a scope is recorded as failed with the reason and not retried.
"""
from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..bitrix.errors import AuthLost, ScopeMissing
from ..db import db_session
from ..jobs import RETRY_SYNC, SYNC, enqueue, job_key
from ..models import Portal, PortalStatus
from ..models.directory import DirectoryRun, DirectorySettings
from ..sync.service import pause_reason
from .portal import count_email_claims, read_portal_departments, read_users
from .sync import DEFAULT_ROLES_WITHOUT_EMAIL, Report, apply_departments, apply_users, settings_for

log = logging.getLogger("hub24.users")
DEFAULT_DAILY_AT = "03:00"  # UTC; USERS_SYNC_AT in the environment, or per portal in directory_settings
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ROLES = ("admin", "manager", "employee")


class DirectoryRefused(Exception):
    """The directory cannot be synced or configured as asked; the message says why and what to do."""


def _finish(run: DirectoryRun, status: str, report: Report | None, error: str | None = None) -> dict[str, Any]:
    run.status, run.finished_at, run.error = status, datetime.now(timezone.utc), error
    if report is not None:
        run.report = report.as_dict()
    db_session().commit()
    return run_json(run)


def run_json(run: DirectoryRun) -> dict[str, Any]:
    """A run as the API and the CLI show it."""
    return {"run_id": run.id, "portal_id": run.portal_id, "trigger": run.trigger, "status": run.status,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error, "report": run.report or {}}


def run_directory_sync(portal_id: int, trigger: str = "cli", *, bitrix_user_id: int | None = None,
                       job_id: str | None = None) -> dict[str, Any]:
    """Sync one portal's directory now (every user, or one); returns the run with its report.

    Raises DirectoryRefused for an unknown portal; the gateway's transient errors (rate limits, network)
    propagate after the run is recorded as failed, so a job is retried.
    """
    from ..bitrix.client import client_for

    session = db_session()
    portal = session.get(Portal, portal_id)
    if portal is None:
        raise DirectoryRefused(f"portal {portal_id} does not exist")
    run = DirectoryRun(portal_id=portal_id, trigger=trigger, job_id=job_id, report={})
    session.add(run)
    session.commit()
    reason = pause_reason(portal)
    if reason:
        return _finish(run, "failed", None, f"{reason}; reinstall Hub24 from the portal's Applications page")
    report = Report()
    try:
        client = client_for(portal_id)
        session.commit()  # release the row locks client_for took; no transaction is held while the portal answers
        if bitrix_user_id is None:
            read = read_users(client, {"ACTIVE": True})
            departments = read_portal_departments(client)
            apply_departments(session, portal_id, departments, report)
            apply_users(session, portal_id, read, report, full=True)
        else:
            read = read_users(client, {"ID": int(bitrix_user_id)})
            claims = {}
            for pu in read.users:
                if pu.active and pu.email:
                    claims[pu.email.lower()] = count_email_claims(client, pu.email)
            if not read.users:
                report.skipped.append({"bitrix_user_id": int(bitrix_user_id), "user": f"Bitrix24 user {bitrix_user_id}",
                                       "reason": "user.get does not list this user (a bot, an extranet or e-mail "
                                                 "user, or removed)"})
            apply_users(session, portal_id, read, report, full=False, email_claims=claims)
        return _finish(run, "succeeded", report)
    except (AuthLost, ScopeMissing) as exc:
        session.rollback()
        what = ("Hub24 lacks a scope it needs (user, department); reinstall it granting them"
                if isinstance(exc, ScopeMissing) else "the portal's authorisation is gone; reinstall Hub24")
        return _finish(session.get(DirectoryRun, run.id), "failed", None, f"{what} ({exc.code})")
    except Exception as exc:
        session.rollback()
        _finish(session.get(DirectoryRun, run.id), "failed", None, f"{type(exc).__name__}: {exc}"[:2000])
        raise


def sync_directory(portal_id: int, trigger: str = "daily", bitrix_user_id: int | None = None) -> dict[str, Any]:
    """Job: `run_directory_sync` under the current RQ job's id; returns the run (RQ keeps it as the result)."""
    from rq import get_current_job

    job = get_current_job()
    return run_directory_sync(portal_id, trigger, bitrix_user_id=bitrix_user_id, job_id=job.id if job else None)


def enqueue_directory_sync(portal_id: int, trigger: str = "api"):
    """Queue a whole-directory sync; while one is queued or running for the portal, that job is returned."""
    return enqueue(SYNC, sync_directory, portal_id, trigger, job_id=job_key("users-sync", portal_id),
                   retry=RETRY_SYNC)


def enqueue_user_sync(portal_id: int, bitrix_user_id: int | str):
    """Queue a single-user sync (ONUSERADD). Raises ValueError for an id that is not a number."""
    uid = int(bitrix_user_id)
    return enqueue(SYNC, sync_directory, portal_id, "event", uid, job_id=job_key("users-sync-user", portal_id, uid),
                   retry=RETRY_SYNC)


def default_daily_at() -> str:
    """The app-wide daily sync time (UTC): the USERS_SYNC_AT setting, else 03:00."""
    value = str(current_app.config.get("USERS_SYNC_AT") or os.environ.get("USERS_SYNC_AT") or DEFAULT_DAILY_AT)
    return value if _HHMM.match(value) else DEFAULT_DAILY_AT


def schedule_daily_syncs(now: datetime | None = None) -> int:
    """Periodic job: queue the daily directory sync of every active portal whose time of day has come."""
    session = db_session()
    now = now or datetime.now(timezone.utc)
    today, hhmm = now.date().isoformat(), now.strftime("%H:%M")
    fallback = default_daily_at()
    n = 0
    for portal in session.scalars(select(Portal).where(Portal.status == PortalStatus.active)):
        row = session.get(DirectorySettings, portal.id)
        if row is None:
            row = DirectorySettings(portal_id=portal.id, roles_without_email=list(DEFAULT_ROLES_WITHOUT_EMAIL))
            session.add(row)
        if row.last_daily_on == today or hhmm < (row.daily_at or fallback):
            continue
        enqueue(SYNC, sync_directory, portal.id, "daily", job_id=job_key("users-sync", portal.id), retry=RETRY_SYNC)
        row.last_daily_on = today
        n += 1
    session.commit()
    return n


def get_settings(portal_id: int) -> dict[str, Any]:
    """The portal's directory settings as the API shows them."""
    row = settings_for(db_session(), portal_id)
    return {"daily_at": row.daily_at or default_daily_at(), "daily_at_is_default": row.daily_at is None,
            "roles_without_email": list(row.roles_without_email or [])}


def put_settings(portal_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change `daily_at` ("HH:MM" UTC, or null for the default) and `roles_without_email` (a list of roles).

    Raises DirectoryRefused naming the first bad key or value; nothing is saved then.
    """
    unknown = sorted(set(changes) - {"daily_at", "roles_without_email"})
    if unknown:
        raise DirectoryRefused(f"unknown setting {unknown[0]!r}; settings are daily_at and roles_without_email")
    daily = changes.get("daily_at", ...)
    if daily is not ... and daily is not None and not (isinstance(daily, str) and _HHMM.match(daily)):
        raise DirectoryRefused('daily_at must be a time of day "HH:MM" (UTC), e.g. "03:30", or null for the default')
    roles = changes.get("roles_without_email", ...)
    if roles is not ... and not (isinstance(roles, list) and all(r in ROLES for r in roles)):
        raise DirectoryRefused(f"roles_without_email must be a list of roles from {', '.join(ROLES)}")
    session = db_session()
    row = session.get(DirectorySettings, portal_id)
    if row is None:
        row = DirectorySettings(portal_id=portal_id, roles_without_email=list(DEFAULT_ROLES_WITHOUT_EMAIL))
        session.add(row)
    if daily is not ...:
        row.daily_at = daily
    if roles is not ...:
        row.roles_without_email = sorted(set(roles))
    session.commit()
    return get_settings(portal_id)


def recent_runs(portal_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The portal's latest directory runs, newest first."""
    rows = db_session().scalars(select(DirectoryRun).where(DirectoryRun.portal_id == portal_id)
                                .order_by(DirectoryRun.id.desc()).limit(limit))
    return [run_json(r) for r in rows]
