"""/api/v1/crm/... and /api/v1/stats/...: the portal's mirrored CRM, read with filters, sorting and paging.

Thin views: parse (`readapi_query`), run one SELECT on the token's portal schema, shape the answer. The
portal is the token's; see `readapi_common` for the errors. `register_blueprints` wires every read-API
blueprint (this one, the directory's and the OpenAPI description) into the app.
"""
from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request
from sqlalchemy import text

from ..db import db_session
from ..models.sync import SyncState
from ..sync.schema import ident, schema_name
from .readapi_common import ApiError, mirror_empty, mirror_tables, page_meta, read_endpoint, require_scope, stale_warning
from .readapi_query import (DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, BadQuery, decode_cursor, encode_cursor,
                            load_columns, parse_fields, parse_filters, parse_int, parse_sort, to_json)

bp = Blueprint("read_api", __name__, url_prefix="/api/v1")


def register_blueprints(app: Flask) -> None:
    """Register the read API, the directory API and the OpenAPI description."""
    from .openapi import bp as openapi_bp
    from .users import bp as users_bp

    app.register_blueprint(bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(openapi_bp)


def _table(entity: str) -> tuple[str, dict]:
    """The mirrored table for `entity` (deals, leads, contacts, companies, sp_<id>) or a 404/409 ApiError."""
    require_scope(g.portal, "crm")
    tables = mirror_tables(g.portal.id)
    if not tables:
        raise mirror_empty("tables")
    if entity not in tables:
        raise ApiError(404, "not_found", f"No mirrored entity {entity[:60]!r}.",
                       f"Mirrored entities: {', '.join(tables)} (GET /api/v1/crm lists them).")
    info = tables[entity]
    state = db_session().query(SyncState).filter_by(portal_id=g.portal.id, entity=info["entity"]).one_or_none()
    if state is None or state.full_completed_at is None:
        raise mirror_empty(entity)
    return entity, info


def _meta_warning(meta: dict) -> dict:
    warning = stale_warning(g.portal)
    if warning:
        meta["warning"] = warning
    return meta


@bp.get("/crm")
@read_endpoint
def entities():
    """The mirrored entities with their record counts and whether their first full sync finished."""
    require_scope(g.portal, "crm")
    tables = mirror_tables(g.portal.id)
    if not tables:
        raise mirror_empty("tables")
    s = schema_name(g.portal.id)
    states = {st.entity: st for st in db_session().query(SyncState).filter_by(portal_id=g.portal.id)}
    out = []
    for table, info in tables.items():
        st = states.get(info["entity"])
        count = db_session().execute(text(f"SELECT count(*) FROM {ident(s)}.{ident(table)}")).scalar()
        out.append({"entity": table, "entity_type_id": info["entity_type_id"], "title": info["title"],
                    "records": count, "synced": bool(st and st.full_completed_at),
                    "last_full_sync": st.full_completed_at.isoformat() if st and st.full_completed_at else None})
    return jsonify(data=out, meta=_meta_warning({}))


@bp.get("/crm/<entity>/fields")
@read_endpoint
def entity_fields(entity: str):
    """The columns of an entity: names to filter and sort by, their types and Bitrix24 titles."""
    table, _ = _table(entity)
    cols = load_columns(db_session().connection(), schema_name(g.portal.id), table)
    return jsonify(data=[{"column": c.name, "type": c.pg_type + ("[]" if c.is_multiple else ""), "title": c.title,
                          "bitrix24_field": c.b24_field, "filterable": c.filterable} for c in cols.values()])


@bp.get("/crm/<entity>")
@read_endpoint
def list_records(entity: str):
    """Records of one entity with filters, sorting and limit/offset or cursor paging."""
    table, _ = _table(entity)
    conn = db_session().connection()
    s = schema_name(g.portal.id)
    cols = load_columns(conn, s, table)
    where, params = parse_filters(request.args.items(multi=True), cols)
    order = parse_sort(request.args.get("sort"), cols)
    fields = parse_fields(request.args.get("fields"), cols)
    limit = parse_int(request.args.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = parse_int(request.args.get("offset"), "offset", 0, 0, MAX_OFFSET)
    cursor = request.args.get("cursor")
    by_id_only = [k for k, _ in order] == ["id"]
    count_sql = f"SELECT count(*) FROM {ident(s)}.{ident(table)}" + (" WHERE " + " AND ".join(where) if where else "")
    total = conn.execute(text(count_sql), params).scalar()
    page_where = list(where)
    if cursor is not None:
        if not by_id_only:
            raise BadQuery("cursor paging follows id order: use sort=id or sort=-id (or offset with other sorts)")
        if "offset" in request.args:
            raise BadQuery("give either cursor or offset, not both")
        after, desc = decode_cursor(cursor)
        if desc != order[0][1]:
            raise BadQuery("cursor was made for the other sort direction; keep the sort you started with")
        page_where.append(f"id {'<' if desc else '>'} :after")
        params["after"] = after
        offset = 0
    sql = (f"SELECT {', '.join(ident(f) for f in fields)} FROM {ident(s)}.{ident(table)}"
           + (" WHERE " + " AND ".join(page_where) if page_where else "")
           + " ORDER BY " + ", ".join(f"{ident(k)} {'DESC' if d else 'ASC'} NULLS LAST" for k, d in order)
           + " LIMIT :limit OFFSET :offset")
    rows = conn.execute(text(sql), {**params, "limit": limit, "offset": offset}).mappings().all()
    data = [{k: to_json(v) for k, v in r.items()} for r in rows]
    extra = {"entity": table, "sort": [("-" if d else "") + k for k, d in order]}
    if by_id_only:
        extra["next_cursor"] = encode_cursor(data[-1]["id"], order[0][1]) if len(data) == limit else None
    meta = page_meta(limit, offset, total, len(data), **extra)
    if cursor is not None:
        meta.pop("next_offset")
    return jsonify(data=data, meta=_meta_warning(meta))


@bp.get("/crm/<entity>/<int:record_id>")
@read_endpoint
def get_record(entity: str, record_id: int):
    """One record by id, every column plus the raw record as Bitrix24 sent it."""
    table, _ = _table(entity)
    s = schema_name(g.portal.id)
    row = db_session().execute(text(f"SELECT * FROM {ident(s)}.{ident(table)} WHERE id = :id"),
                               {"id": record_id}).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", f"No {table} record {record_id} in the mirror.",
                       "Check the id; a record created seconds ago appears after the next sync.")
    return jsonify(data={k: to_json(v) for k, v in row.items()})


@bp.get("/stats/summary")
@read_endpoint
def stats_summary():
    """Counts by stage (with labels), by manager, by department, amounts, and activity over time."""
    from .readapi_stats import summary

    entity = request.args.get("entity", "deals")
    table, _ = _table(entity)
    out = summary(db_session().connection(), g.portal.id, table, request.args)
    out["meta"] = _meta_warning({"entity": table})
    return jsonify(out)
