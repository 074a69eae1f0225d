"""GET /health: PostgreSQL, Redis, queues, workers, scheduler and a line per portal.

200 when the service can do its work (database and Redis up, a worker alive); 503 with reasons when not.
Portals needing reinstallation are listed as warnings: they do not make the service unhealthy.
"""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify
from rq import Worker
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select, text

from ..db import db_session
from ..jobs import QUEUES, get_queue, redis_connection
from ..maintenance import HEARTBEAT_KEY
from ..models import Portal, PortalStatus

bp = Blueprint("health", __name__)


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def check_postgres() -> dict:
    try:
        started = time.perf_counter()
        db_session().execute(text("SET LOCAL statement_timeout = 2000; SELECT 1"))
        return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # report, never raise: health must answer
        db_session().rollback()
        return {"up": False, "error": type(exc).__name__}


def check_redis() -> dict:
    try:
        started = time.perf_counter()
        redis_connection().ping()
        return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:
        return {"up": False, "error": type(exc).__name__}


def check_queues() -> tuple[dict, dict]:
    conn = redis_connection()
    queues = {}
    for name in QUEUES:
        q = get_queue(name, conn)
        queues[name] = {"depth": q.count, "failed": FailedJobRegistry(queue=q).count}
    workers = Worker.all(connection=conn)
    beat = conn.get(HEARTBEAT_KEY)
    info = {
        "alive": len(workers),
        "by_queue": {name: sum(1 for w in workers if name in w.queue_names()) for name in QUEUES},
        "scheduler_heartbeat_age_s": round(time.time() - float(beat), 1) if beat else None,
    }
    return queues, info


def portal_lines() -> list[dict]:
    from ..models.sync import RunStatus, SyncRun

    rows = db_session().scalars(select(Portal).where(Portal.status != PortalStatus.uninstalled).order_by(Portal.id))
    last_sync = dict(db_session().execute(
        select(SyncRun.portal_id, func.max(SyncRun.finished_at)).where(SyncRun.status == RunStatus.succeeded)
        .group_by(SyncRun.portal_id)).all())
    out = []
    for p in rows:
        out.append({
            "member_id": p.member_id,
            "domain": p.domain,
            "status": p.status.value,
            "installed": p.is_installed,
            "install_finished": p.install_finished_at is not None,
            "connection": p.connection_kind.value,
            "token_expires_at": _iso(p.token.expires_at) if p.token else None,
            "needs_reinstall": p.needs_reinstall,
            "reason": p.needs_reinstall_reason,
            "last_sync": _iso(last_sync.get(p.id)),
        })
    return out


@bp.get("/health")
def health():
    reasons: list[str] = []
    warnings: list[str] = []
    pg = check_postgres()
    rd = check_redis()
    if not pg["up"]:
        reasons.append("PostgreSQL is unreachable")
    queues, workers = ({}, {"alive": 0})
    if rd["up"]:
        try:
            queues, workers = check_queues()
        except Exception as exc:
            reasons.append(f"cannot read queues: {type(exc).__name__}")
        if not workers.get("alive"):
            reasons.append("no worker is running: start one with `flask worker`")
    else:
        reasons.append("Redis is unreachable")
    portals = []
    if pg["up"]:
        try:
            portals = portal_lines()
        except Exception as exc:
            db_session().rollback()
            reasons.append(f"cannot read portals: {type(exc).__name__} (are migrations applied? run `flask db upgrade`)")
    for p in portals:
        if p["needs_reinstall"]:
            warnings.append(f"portal {p['domain']} needs reinstalling: {p['reason'] or 'authorisation lost'}")
    body = {
        "status": "ok" if not reasons else "unhealthy",
        "reasons": reasons,
        "warnings": warnings,
        "postgres": pg,
        "redis": rd,
        "queues": queues,
        "workers": workers,
        "portals": portals,
        "version": current_app.config.get("VERSION", "dev"),
    }
    return jsonify(body), (200 if not reasons else 503)
