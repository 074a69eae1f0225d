"""/api/v1/users..., /api/v1/departments...: Hub24's user directory, its sync and its settings (thin views).

The directory is Hub24's own (roles, whether a password is set; never the hash). `POST /users/sync` queues
a sync job and answers 202 with its id; `GET /users/sync/<job_id>` shows the job and, once it finished,
the report (created, updated, deactivated, skipped with reasons, conflicts).
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, or_, select

from ..db import db_session
from ..jobs import redis_connection
from ..models.directory import ROLES, DirectoryDepartment, DirectoryRun, DirectoryUser
from ..users import service
from .readapi_common import ApiError, page_meta, read_endpoint, require_authorization, require_scope
from .readapi_query import MAX_LIMIT, MAX_OFFSET, BadQuery, parse_int

bp = Blueprint("users_api", __name__, url_prefix="/api/v1")


def _user_json(u: DirectoryUser) -> dict:
    return {"id": u.id, "bitrix_user_id": u.bitrix_user_id, "name": u.name, "last_name": u.last_name,
            "full_name": u.full_name, "email": u.email, "position": u.position, "departments": list(u.departments or []),
            "active": u.active, "role": u.role, "is_portal_admin": u.is_portal_admin,
            "has_password": u.password_set_at is not None,
            "created_at": u.created_at.isoformat(), "updated_at": u.updated_at.isoformat(),
            "deactivated_at": u.deactivated_at.isoformat() if u.deactivated_at else None}


def _require_directory() -> None:
    require_scope(g.portal, "user")
    ran = db_session().scalar(select(DirectoryRun.id).where(DirectoryRun.portal_id == g.portal.id,
                                                            DirectoryRun.status == "succeeded").limit(1))
    if ran is None:
        raise ApiError(409, "mirror_empty", "The user directory is empty: no directory sync has finished yet.",
                       "Start one: POST /api/v1/users/sync (or `flask users sync`); it also runs daily.")


def _bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadQuery(f"{name} must be true or false")


def _subtree(root: int) -> set[int]:
    rows = db_session().execute(select(DirectoryDepartment.bitrix_id, DirectoryDepartment.parent_bitrix_id)
                                .where(DirectoryDepartment.portal_id == g.portal.id)).all()
    children: dict[int | None, list[int]] = {}
    for bid, parent in rows:
        children.setdefault(parent, []).append(bid)
    out, todo = set(), [root]
    while todo:
        d = todo.pop()
        if d not in out:
            out.add(d)
            todo.extend(children.get(d, []))
    return out


@bp.get("/users")
@read_endpoint
def list_users():
    """Hub24 users of the token's portal: filter by active, role, department (with sub-departments), q."""
    _require_directory()
    q = select(DirectoryUser).where(DirectoryUser.portal_id == g.portal.id)
    active = _bool("active")
    if active is not None:
        q = q.where(DirectoryUser.active.is_(active))
    role = request.args.get("role")
    if role is not None:
        if role not in ROLES:
            raise BadQuery(f"role must be one of {', '.join(ROLES)}")
        q = q.where(DirectoryUser.role == role)
    if "department" in request.args:
        dep = parse_int(request.args.get("department"), "department", 0, 1, 10 ** 12)
        deps = _subtree(dep) if _bool("include_subdepartments") else {dep}
        q = q.where(DirectoryUser.departments.overlap(sorted(deps)))
    text_q = request.args.get("q")
    if text_q:
        if len(text_q) > 100:
            raise BadQuery("q may be at most 100 characters")
        like = "%" + text_q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(or_(DirectoryUser.name.ilike(like), DirectoryUser.last_name.ilike(like),
                        DirectoryUser.email.ilike(like)))
    limit = parse_int(request.args.get("limit"), "limit", 50, 1, MAX_LIMIT)
    offset = parse_int(request.args.get("offset"), "offset", 0, 0, MAX_OFFSET)
    total = db_session().scalar(select(func.count()).select_from(q.subquery()))
    rows = db_session().scalars(q.order_by(DirectoryUser.id).limit(limit).offset(offset)).all()
    return jsonify(data=[_user_json(u) for u in rows], meta=page_meta(limit, offset, total, len(rows)))


@bp.get("/users/<int:user_id>")
@read_endpoint
def get_user(user_id: int):
    """One Hub24 user by Hub24 id."""
    _require_directory()
    u = db_session().get(DirectoryUser, user_id)
    if u is None or u.portal_id != g.portal.id:
        raise ApiError(404, "not_found", f"No user {user_id} in this portal's directory.")
    return jsonify(data=_user_json(u))


def _departments() -> list[dict]:
    _require_directory()
    rows = db_session().scalars(select(DirectoryDepartment).where(DirectoryDepartment.portal_id == g.portal.id)
                                .order_by(DirectoryDepartment.sort, DirectoryDepartment.bitrix_id)).all()
    heads = dict(db_session().execute(select(DirectoryUser.bitrix_user_id, DirectoryUser.id)
                                      .where(DirectoryUser.portal_id == g.portal.id)).all())
    by_id = {d.bitrix_id: d for d in rows}
    members: dict[int, int] = {}
    for deps in db_session().scalars(select(DirectoryUser.departments).where(DirectoryUser.portal_id == g.portal.id,
                                                                             DirectoryUser.active.is_(True))):
        for d in deps or []:
            members[d] = members.get(d, 0) + 1
    out = []
    for d in rows:
        path, cur, seen = [], d, set()
        while cur is not None and cur.bitrix_id not in seen:
            seen.add(cur.bitrix_id)
            path.insert(0, cur.bitrix_id)
            cur = by_id.get(cur.parent_bitrix_id) if cur.parent_bitrix_id is not None else None
        out.append({"id": d.bitrix_id, "name": d.name, "parent_id": d.parent_bitrix_id,
                    "head_bitrix_user_id": d.head_bitrix_user_id, "head_user_id": heads.get(d.head_bitrix_user_id),
                    "sort": d.sort, "active": d.active, "path": path, "depth": len(path) - 1,
                    "members": members.get(d.bitrix_id, 0)})
    return out


@bp.get("/departments")
@read_endpoint
def list_departments():
    """Every department, flat, each with its parent, head, path from the root and active member count."""
    return jsonify(data=_departments())


@bp.get("/departments/tree")
@read_endpoint
def department_tree():
    """The departments as a tree: roots with nested `children`."""
    flat = {d["id"]: {**d, "children": []} for d in _departments()}
    roots = []
    for d in flat.values():
        parent = flat.get(d["parent_id"]) if d["parent_id"] is not None else None
        (parent["children"] if parent is not None and parent is not d else roots).append(d)
    return jsonify(data=roots)


@bp.post("/users/sync")
@read_endpoint
def start_sync():
    """Queue a directory sync for the token's portal; 202 with the job id to poll."""
    require_scope(g.portal, "user")
    require_authorization(g.portal)
    job = service.enqueue_directory_sync(g.portal.id, "api")
    return jsonify(job_id=job.id, status=job.get_status(), poll=f"/api/v1/users/sync/{job.id}"), 202


@bp.get("/users/sync/<job_id>")
@read_endpoint
def sync_job(job_id: str):
    """A directory sync job of the token's portal: its status and, when finished, the run and report."""
    if len(job_id) > 128:
        raise BadQuery("job_id is too long")
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        job = None
    if job is None or not job.args or job.args[0] != g.portal.id or not job.id.startswith("users-sync"):
        raise ApiError(404, "not_found", f"No directory sync job {job_id[:60]!r} for this portal.",
                       "Start one with POST /api/v1/users/sync; finished jobs are kept for a while.")
    status = job.get_status()
    return jsonify(job_id=job.id, status=status, result=job.return_value() if status == "finished" else None)


@bp.get("/users/sync/runs")
@read_endpoint
def sync_runs():
    """The portal's latest directory sync runs with their reports, newest first."""
    limit = parse_int(request.args.get("limit"), "limit", 20, 1, 100)
    return jsonify(data=service.recent_runs(g.portal.id, limit))


@bp.get("/users/settings")
@read_endpoint
def get_settings():
    """When the daily sync runs (UTC) and which roles may lack an e-mail."""
    return jsonify(service.get_settings(g.portal.id))


@bp.put("/users/settings")
@read_endpoint
def put_settings():
    """Change the daily time and the roles allowed without e-mail."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadQuery('send a JSON object like {"daily_at": "03:30", "roles_without_email": ["employee"]}')
    try:
        return jsonify(service.put_settings(g.portal.id, body))
    except service.DirectoryRefused as exc:
        raise BadQuery(str(exc)) from None
