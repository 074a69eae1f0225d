"""The statistics summary of one mirrored entity: stages, managers, departments, amounts, activity.

Which columns play which part is read from the mirror's `fields` table: the stage is the column whose
Bitrix24 status type is a stage list (``stage_id`` for deals and smart processes, ``status_id`` for
leads), the amount is ``opportunity``, the manager ``assigned_by_id``, the time ``created_time``. A part
whose column the entity lacks is null. A manager in two departments counts in both.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..sync.schema import ident, schema_name
from .readapi_query import BadQuery, Col, load_columns, parse_value, to_json

BUCKETS = ("day", "week", "month", "quarter", "year")


def _stage_column(conn: Connection, s: str, table: str) -> str | None:
    return conn.execute(text(f"SELECT column_name FROM {ident(s)}.fields WHERE table_name = :t AND label_of IS NULL "
                             "AND (status_type LIKE '%STAGE%' OR status_type = 'STATUS') AND NOT removed "
                             "ORDER BY (column_name IN ('stage_id', 'status_id')) DESC, column_name LIMIT 1"),
                        {"t": table}).scalar()


def summary(conn: Connection, portal_id: int, table: str, args: Mapping[str, str]) -> dict[str, Any]:
    """The summary for `table` of `portal_id`'s mirror; `args` may hold from/to (dates) and bucket.

    Raises BadQuery for a malformed date or bucket.
    """
    s = schema_name(portal_id)
    cols = load_columns(conn, s, table)
    bucket = args.get("bucket", "month")
    if bucket not in BUCKETS:
        raise BadQuery(f"bucket must be one of {', '.join(BUCKETS)}")
    time_col = "created_time" if "created_time" in cols else None
    where, params = [], {}
    for key, op in (("from", ">="), ("to", "<")):
        if args.get(key):
            if time_col is None:
                raise BadQuery(f"{key}: {table} has no creation time to filter by")
            params[key] = parse_value(Col(key, "date", False, key), args[key], key)
            where.append(f"t.created_time {op} CAST(:{key} AS date)")
    if "from" in params and "to" in params and params["from"] >= params["to"]:
        raise BadQuery("from must be earlier than to")
    w = (" WHERE " + " AND ".join(where)) if where else ""
    src = f"{ident(s)}.{ident(table)} t"
    amount = "t.opportunity" if "opportunity" in cols else None
    amt = f"coalesce(sum({amount}), 0)" if amount else "NULL"

    def rows(sql: str) -> list[dict]:
        return [{k: to_json(v) for k, v in r.items()} for r in conn.execute(text(sql), params).mappings()]

    out: dict[str, Any] = {"entity": table, "total": rows(f"SELECT count(*) AS records, {amt} AS amount FROM {src}{w}")[0]}
    stage = _stage_column(conn, s, table)
    if stage:
        label = f"max(t.{ident(stage + '_label')})" if stage + "_label" in cols else "NULL"
        semantics = ("max(t.stage_semantic_id)" if "stage_semantic_id" in cols else "NULL")
        out["by_stage"] = rows(f"SELECT t.{ident(stage)} AS stage_id, {label} AS stage, {semantics} AS semantics, "
                               f"count(*) AS records, {amt} AS amount FROM {src}{w} GROUP BY 1 ORDER BY 4 DESC, 1")
    else:
        out["by_stage"] = None
    if "assigned_by_id" in cols:
        out["by_manager"] = rows(
            f"SELECT t.assigned_by_id AS user_id, max(u.full_name) AS name, count(*) AS records, {amt} AS amount "
            f"FROM {src} LEFT JOIN {ident(s)}.users u ON u.id = t.assigned_by_id{w} GROUP BY 1 ORDER BY 3 DESC, 1")
        out["by_department"] = rows(
            f"SELECT d.id AS department_id, coalesce(max(dep.name), '(none)') AS name, count(*) AS records, "
            f"{amt} AS amount FROM {src} LEFT JOIN {ident(s)}.users u ON u.id = t.assigned_by_id "
            f"LEFT JOIN LATERAL unnest(coalesce(u.departments, ARRAY[NULL]::bigint[])) AS d(id) ON true "
            f"LEFT JOIN {ident(s)}.departments dep ON dep.id = d.id{w} GROUP BY 1 ORDER BY 3 DESC, 1 NULLS LAST")
    else:
        out["by_manager"] = out["by_department"] = None
    if "stage_semantic_id" in cols:
        out["amounts"] = rows(
            f"SELECT CASE t.stage_semantic_id WHEN 'S' THEN 'won' WHEN 'F' THEN 'lost' ELSE 'open' END AS outcome, "
            + ("t.currency_id AS currency, " if "currency_id" in cols else "NULL AS currency, ")
            + f"count(*) AS records, {amt} AS amount FROM {src}{w} GROUP BY 1, 2 ORDER BY 1, 2")
    else:
        out["amounts"] = None
    if time_col:
        out["activity"] = {"bucket": bucket, "series": rows(
            f"SELECT date_trunc('{bucket}', t.created_time AT TIME ZONE 'UTC')::date AS period, count(*) AS created, "
            f"{amt} AS amount FROM {src}{w} GROUP BY 1 ORDER BY 1")}
    else:
        out["activity"] = None
    out["period"] = {"from": params["from"].isoformat() if isinstance(params.get("from"), date) else None,
                     "to": params["to"].isoformat() if isinstance(params.get("to"), date) else None}
    return out
