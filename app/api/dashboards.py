"""/api/v1/dashboards/... and /api/v1/settings: saved dashboards, recent questions, the builder's field
catalogue, and the settings page's per-portal switches (thin views).

Every call is scoped to the caller's portal (`api_auth_required`). A frame caller whose token carries a
Bitrix24 user id sees that user's dashboards and the portal's shared ones; an API-key caller sees them all.
Settings are for administrators only: a frame token with the admin claim (Bitrix24 said so when the page
opened) or an API key. Bad input is a 400 naming the field; someone else's dashboard is a 404.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import delete, func, or_, select, text

from ..db import db_session
from ..models import SyncRun
from ..models.dashboards import WIDGET_KINDS, Dashboard, DashboardWidget, PortalSettings, RecentQuestion
from .auth import api_auth_required

bp = Blueprint("dashboards_api", __name__, url_prefix="/api/v1")

RECENT_KEPT = 20  # questions kept per user
RECENT_SHOWN = 10
MAX_DASHBOARDS = 200  # per portal
MAX_WIDGETS = 48  # per dashboard
MAX_RESULT_BYTES = 1536 * 1024  # below the app's 2 MiB request cap, so the answer names the field
_CHART_TYPE = re.compile(r"^[a-z_]{0,32}$")
_MODEL = re.compile(r"^[A-Za-z0-9._:/-]{1,100}$")


class Refused(Exception):
    """Bad input: answered 400 with the message."""


class Missing(Exception):
    """Not there, or not the caller's to see: answered 404."""


class Forbidden(Exception):
    """Visible but not the caller's to change: answered 403."""


def _error(status: int, code: str, message: str):
    return jsonify(error=code, message=message), status


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused("Send a JSON object.")
    return body


def _user_id() -> int | None:
    return g.frame.user_id if g.caller == "frame" else None


def _is_admin() -> bool:
    return g.caller == "api_key" or (g.caller == "frame" and getattr(g.frame, "admin", False))


# -- field checks ------------------------------------------------------------------------------

def _title(body: dict, required: bool) -> str | None:
    value = body.get("title")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise Refused("title must be text of 1 to 200 characters.")
    return value.strip()


def _refresh(body: dict) -> int | None:
    value = body.get("refresh_s")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not (value == 0 or 60 <= value <= 86400):
        raise Refused("refresh_s must be 0 (by hand) or seconds between 60 and 86400.")
    return value


def _flag(body: dict, name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise Refused(f"{name} must be true or false.")
    return value


def _json_field(body: dict, name: str, limit: int) -> dict | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(f"{name} must be a JSON object.")
    if len(json.dumps(value, default=str)) > limit:
        raise Refused(f"{name} is larger than {limit // 1024} KiB.")
    return value


def _chart_type(body: dict) -> str | None:
    value = body.get("chart_type")
    if value is None:
        return None
    if not isinstance(value, str) or not _CHART_TYPE.match(value):
        raise Refused("chart_type must be a chart type name such as bar, line or pie.")
    return value


def _position(body: dict) -> int | None:
    value = body.get("position")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10000):
        raise Refused("position must be a whole number from 0 to 10000.")
    return value


# -- dashboards ----------------------------------------------------------------------------------

def _visible():
    q = select(Dashboard).where(Dashboard.portal_id == g.portal.id)
    if g.caller == "frame":
        uid = _user_id()
        mine = Dashboard.user_id == uid if uid is not None else Dashboard.user_id.is_(None)
        q = q.where(or_(mine, Dashboard.shared.is_(True)))
    return q


def _dashboard(dashboard_id: int, *, write: bool = False) -> Dashboard:
    d = db_session().scalar(_visible().where(Dashboard.id == dashboard_id))
    if d is None:
        raise Missing("No such dashboard.")
    if write and g.caller == "frame" and d.user_id != _user_id() and not _is_admin():
        raise Forbidden("Only the person who saved this dashboard (or an administrator) can change it.")
    return d


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _widget_json(w: DashboardWidget) -> dict[str, Any]:
    return {"id": w.id, "title": w.title, "kind": w.kind, "question": w.question, "spec": w.spec or {},
            "chart_type": w.chart_type, "result": w.result or {}, "refreshed_at": _iso(w.refreshed_at),
            "position": w.position}


def _dashboard_json(d: Dashboard) -> dict[str, Any]:
    return {"id": d.id, "title": d.title, "refresh_s": d.refresh_s, "shared": d.shared, "position": d.position,
            "user_id": d.user_id, "mine": d.user_id == _user_id() if g.caller == "frame" else True,
            "updated_at": _iso(d.updated_at), "widgets": [_widget_json(w) for w in d.widgets]}


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return _error(400, "bad_request", str(exc))


@bp.errorhandler(Missing)
def _missing(exc: Missing):
    return _error(404, "not_found", str(exc.args[0]) if exc.args else "Not found.")


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return _error(403, "forbidden", str(exc))


@bp.get("/dashboards")
@api_auth_required
def list_dashboards():
    rows = db_session().scalars(_visible().order_by(Dashboard.position, Dashboard.id)).all()
    return jsonify(dashboards=[_dashboard_json(d) for d in rows])


@bp.post("/dashboards")
@api_auth_required
def create_dashboard():
    body = _body()
    title, refresh, shared = _title(body, True), _refresh(body), _flag(body, "shared")
    count = db_session().scalar(select(func.count()).select_from(Dashboard).where(Dashboard.portal_id == g.portal.id))
    if count >= MAX_DASHBOARDS:
        raise Refused(f"This portal already has {MAX_DASHBOARDS} dashboards; delete one first.")
    d = Dashboard(portal_id=g.portal.id, user_id=_user_id(), title=title, refresh_s=refresh or 0,
                  shared=bool(shared), position=_position(body) or 0)
    db_session().add(d)
    db_session().commit()
    return jsonify(_dashboard_json(d)), 201


@bp.get("/dashboards/<int:dashboard_id>")
@api_auth_required
def get_dashboard(dashboard_id: int):
    return jsonify(_dashboard_json(_dashboard(dashboard_id)))


@bp.route("/dashboards/<int:dashboard_id>", methods=["PUT", "PATCH"])
@api_auth_required
def update_dashboard(dashboard_id: int):
    body = _body()
    d = _dashboard(dashboard_id, write=True)
    values = {"title": _title(body, False), "refresh_s": _refresh(body), "shared": _flag(body, "shared"),
              "position": _position(body)}
    for key, value in values.items():
        if value is not None:
            setattr(d, key, value)
    db_session().commit()
    return jsonify(_dashboard_json(d))


@bp.delete("/dashboards/<int:dashboard_id>")
@api_auth_required
def delete_dashboard(dashboard_id: int):
    d = _dashboard(dashboard_id, write=True)
    db_session().delete(d)
    db_session().commit()
    return "", 204


@bp.post("/dashboards/<int:dashboard_id>/widgets")
@api_auth_required
def add_widget(dashboard_id: int):
    body = _body()
    d = _dashboard(dashboard_id, write=True)
    kind = body.get("kind")
    if kind not in WIDGET_KINDS:
        raise Refused("kind must be ask (a question) or build (a chart builder spec).")
    question = body.get("question")
    spec = _json_field(body, "spec", 16 * 1024)
    if kind == "ask" and (not isinstance(question, str) or not question.strip() or len(question) > 1000):
        raise Refused("question must be text of 1 to 1000 characters.")
    if kind == "build" and not spec:
        raise Refused("spec must be the chart builder's settings (entity, dimension, measure...).")
    if len(d.widgets) >= MAX_WIDGETS:
        raise Refused(f"A dashboard holds at most {MAX_WIDGETS} charts.")
    result = _json_field(body, "result", MAX_RESULT_BYTES) or {}
    w = DashboardWidget(dashboard_id=d.id, title=_title(body, True), kind=kind,
                        question=question.strip() if kind == "ask" else None, spec=spec or {},
                        chart_type=_chart_type(body) or str(result.get("chart_type") or "")[:32],
                        result=result, refreshed_at=datetime.now(timezone.utc) if result else None,
                        position=_position(body) if body.get("position") is not None else len(d.widgets))
    db_session().add(w)
    d.updated_at = datetime.now(timezone.utc)
    db_session().commit()
    return jsonify(_widget_json(w)), 201


def _widget(d: Dashboard, widget_id: int) -> DashboardWidget:
    w = next((w for w in d.widgets if w.id == widget_id), None)
    if w is None:
        raise Missing("No such chart on this dashboard.")
    return w


@bp.route("/dashboards/<int:dashboard_id>/widgets/<int:widget_id>", methods=["PUT", "PATCH"])
@api_auth_required
def update_widget(dashboard_id: int, widget_id: int):
    """Rename or move a chart, or store the result of a refresh (any viewer may refresh a shared one)."""
    body = _body()
    only_result = set(body) <= {"result"}
    d = _dashboard(dashboard_id, write=not only_result)
    w = _widget(d, widget_id)
    title, position, result = _title(body, False), _position(body), _json_field(body, "result", MAX_RESULT_BYTES)
    if title is not None:
        w.title = title
    if position is not None:
        w.position = position
    if result is not None:
        w.result, w.refreshed_at = result, datetime.now(timezone.utc)
    db_session().commit()
    return jsonify(_widget_json(w))


@bp.delete("/dashboards/<int:dashboard_id>/widgets/<int:widget_id>")
@api_auth_required
def delete_widget(dashboard_id: int, widget_id: int):
    d = _dashboard(dashboard_id, write=True)
    d.widgets.remove(_widget(d, widget_id))  # delete-orphan removes the row
    db_session().commit()
    return "", 204


# -- recent questions ----------------------------------------------------------------------------

def _recent_query():
    uid = _user_id()
    return select(RecentQuestion).where(RecentQuestion.portal_id == g.portal.id,
                                        RecentQuestion.user_id == uid if uid is not None
                                        else RecentQuestion.user_id.is_(None))


@bp.get("/dashboards/recent")
@api_auth_required
def recent_questions():
    rows = db_session().scalars(_recent_query().order_by(RecentQuestion.asked_at.desc(), RecentQuestion.id.desc())
                                .limit(RECENT_KEPT)).all()
    seen, out = set(), []
    for r in rows:
        key = r.question.strip().lower()
        if key not in seen:
            seen.add(key)
            out.append({"question": r.question, "asked_at": _iso(r.asked_at), "job_id": r.job_id})
    return jsonify(questions=out[:RECENT_SHOWN])


@bp.post("/dashboards/recent")
@api_auth_required
def add_recent_question():
    body = _body()
    question, job_id = body.get("question"), body.get("job_id")
    if not isinstance(question, str) or not question.strip() or len(question) > 1000:
        raise Refused("question must be text of 1 to 1000 characters.")
    if job_id is not None and (not isinstance(job_id, str) or not re.fullmatch(r"[A-Za-z0-9_:.-]{1,64}", job_id)):
        raise Refused("job_id must be the id the ask call returned.")
    session = db_session()
    session.add(RecentQuestion(portal_id=g.portal.id, user_id=_user_id(), question=question.strip(), job_id=job_id))
    session.flush()
    keep = select(RecentQuestion.id).where(RecentQuestion.id.in_(
        _recent_query().with_only_columns(RecentQuestion.id)
        .order_by(RecentQuestion.asked_at.desc(), RecentQuestion.id.desc()).limit(RECENT_KEPT)))
    old = _recent_query().with_only_columns(RecentQuestion.id).where(RecentQuestion.id.not_in(keep))
    session.execute(delete(RecentQuestion).where(RecentQuestion.id.in_(old)))
    session.commit()
    return jsonify(question=question.strip()), 201


# -- the builder's field catalogue (from the mirror's own metadata tables) ----------------------

_NUMERIC = ("integer", "bigint", "numeric", "double precision", "real", "smallint")
_TIME = ("date", "timestamp with time zone", "timestamptz", "timestamp")


@bp.get("/dashboards/catalog")
@api_auth_required
def catalog():
    """Entities and their columns (title, type, role) for the chart builder; empty before the first sync."""
    from ..sync.schema import schema_name

    schema = schema_name(g.portal.id)
    session = db_session()
    exists = session.execute(text("SELECT to_regclass(:t) IS NOT NULL AND to_regclass(:f) IS NOT NULL"),
                             {"t": f"{schema}.entities", "f": f"{schema}.fields"}).scalar()
    if not exists:
        return jsonify(entities=[], synced=False)
    entities = session.execute(text(f'SELECT table_name, entity, title FROM "{schema}".entities ORDER BY table_name')).all()
    fields = session.execute(text(
        f'SELECT table_name, column_name, title, pg_type, label_of FROM "{schema}".fields '
        f'WHERE NOT coalesce(removed, false) AND NOT coalesce(is_multiple, false) ORDER BY table_name, column_name')).all()
    by_table: dict[str, list] = {}
    labelled = {(f.table_name, f.label_of) for f in fields if f.label_of}
    for f in fields:
        pg = (f.pg_type or "").lower()
        if f.column_name in ("raw", "synced_at") or (f.table_name, f.column_name) in labelled:
            continue  # a list field is grouped by its label column, not by its id
        role = "time" if pg.startswith(_TIME) else "number" if pg.startswith(_NUMERIC) else "category"
        if f.column_name == "id" or f.column_name.endswith("_id") and role == "number":
            role = "category"
        by_table.setdefault(f.table_name, []).append(
            {"name": f.column_name, "title": f.title or f.column_name, "type": pg, "role": role})
    return jsonify(synced=True, entities=[{"name": e.table_name, "entity": e.entity, "title": e.title or e.table_name,
                                           "columns": by_table.get(e.table_name, [])} for e in entities])


# -- settings (administrators) -------------------------------------------------------------------

def _settings_json() -> dict[str, Any]:
    portal, session = g.portal, db_session()
    row = session.get(PortalSettings, portal.id)
    cfg = current_app.config
    key_set = bool(cfg.get("OPENAI_API_KEY"))
    default_model = cfg.get("OPENAI_MODEL") or "gpt-4o-mini"
    last = session.scalar(select(SyncRun).where(SyncRun.portal_id == portal.id).order_by(SyncRun.id.desc()).limit(1))
    token = portal.token
    return {
        "ai": {"enabled": row.ai_enabled if row else True, "model": (row.ai_model if row else None) or default_model,
               "default_model": default_model, "key_configured": key_set,
               "active": key_set and (row.ai_enabled if row else True)},
        "connection": {"domain": portal.domain, "member_id": portal.member_id, "status": portal.status.value,
                       "kind": portal.connection_kind.value, "plan": portal.plan,
                       "needs_reinstall": portal.needs_reinstall, "reason": portal.needs_reinstall_reason,
                       "installed_at": _iso(portal.installed_at),
                       "token_expires_at": _iso(token.expires_at) if token else None,
                       "token_refreshed_at": _iso(token.refreshed_at) if token else None,
                       "last_sync": {"entity": last.entity, "mode": last.mode.value, "status": last.status.value,
                                     "started_at": _iso(last.started_at), "finished_at": _iso(last.finished_at),
                                     "error": last.error} if last else None},
        "users_sync_available": any(r.rule == "/api/v1/users/sync" and "POST" in (r.methods or ())
                                    for r in current_app.url_map.iter_rules()),
    }


def _admin_only():
    if not _is_admin():
        return _error(403, "admin_required", "Only a Bitrix24 administrator of this portal can see or change settings.")
    return None


@bp.get("/settings")
@api_auth_required
def get_settings():
    return _admin_only() or jsonify(_settings_json())


@bp.put("/settings")
@api_auth_required
def put_settings():
    refused = _admin_only()
    if refused:
        return refused
    body = _body()
    unknown = set(body) - {"ai_enabled", "ai_model"}
    if unknown:
        raise Refused(f"Unknown setting {sorted(unknown)[0]!r}; use ai_enabled or ai_model.")
    enabled, model = _flag(body, "ai_enabled"), body.get("ai_model")
    if model is not None and (not isinstance(model, str) or not _MODEL.match(model.strip())):
        raise Refused("ai_model must be a model name such as gpt-4o-mini.")
    session = db_session()
    row = session.get(PortalSettings, g.portal.id) or PortalSettings(portal_id=g.portal.id, ai_enabled=True)
    session.add(row)
    if enabled is not None:
        row.ai_enabled = enabled
    if model is not None:
        row.ai_model = model.strip()
    row.updated_by = _user_id()
    session.commit()
    return jsonify(_settings_json())
