"""The manual chart builder: entity, dimension (with date buckets), measure and aggregation, filters.

`build_sql(catalog, spec)` turns a builder spec into SQL without AI. Every identifier is checked against
the mirror's own `fields` table (plus `id`) and quoted; every value is a query parameter cast to the
column's type, so nothing the user types becomes SQL. The query then runs through the same runner (the
portal's read-only role) and renderer as an AI answer.

Spec (JSON): {"entity": "deals", "dimension": "stage_id_label" | null, "bucket": "month" | null,
"series": "category_id_label" | null, "measure": "opportunity" | null, "aggregation": "count|sum|avg|min|max",
"filters": [{"column": "closed", "op": "=", "value": "false"}], "chart_type": "bar", "limit": 500}
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..sync.schema import ident
from .catalog import Catalog, ColumnInfo, TableInfo
from .errors import BadSpec
from .render import normalize_type

AGGREGATIONS = ("count", "sum", "avg", "min", "max")
BUCKETS = ("day", "week", "month", "quarter", "year")
OPS = ("=", "!=", ">", ">=", "<", "<=", "contains", "is_null", "not_null", "in")
MAX_FILTERS = 20
MAX_LIMIT = 5000
_NUMERIC = ("bigint", "integer", "numeric", "double precision", "real", "smallint")
_TIME = ("date", "timestamptz", "timestamp with time zone", "timestamp")


@dataclass(frozen=True)
class Built:
    """A builder query: SQL with psycopg2 parameters, and the chart spec for the renderer."""

    sql: str
    params: dict[str, Any]
    spec: dict[str, Any]
    limit: int


def _base(pg_type: str) -> str:
    return pg_type[:-2] if pg_type.endswith("[]") else pg_type


def _column(table: TableInfo, name: Any, what: str) -> ColumnInfo:
    if not isinstance(name, str) or not name:
        raise BadSpec(f"{what} must be a column name of {table.name}.")
    col = table.column(name)
    if col is None or col.removed or col.technical:
        known = ", ".join(c.name for c in table.columns if not c.technical and not c.removed)[:600]
        raise BadSpec(f"{what}: {table.name} has no column {name!r}. Known: {known}.")
    return col


def _value(col: ColumnInfo, value: Any, what: str) -> Any:
    """Check a filter value against the column type; returns the parameter value."""
    base = _base(col.pg_type)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadSpec(f"{what}: a value is required (or use is_null / not_null).")
    if isinstance(value, (list, dict)):
        raise BadSpec(f"{what}: the value must be a single number, date or text.")
    text = str(value).strip()[:200]
    try:
        if base in _NUMERIC:
            return float(text) if base in ("numeric", "double precision", "real") else int(float(text))
        if base == "date":
            return dt.date.fromisoformat(text[:10]).isoformat()
        if base in _TIME:
            return dt.datetime.fromisoformat(text).isoformat()
        if base == "boolean":
            low = text.lower()
            if low not in ("true", "false", "yes", "no", "y", "n", "1", "0"):
                raise ValueError
            return low in ("true", "yes", "y", "1")
    except ValueError:
        raise BadSpec(f"{what}: {text!r} is not a valid {base} for {col.name}.") from None
    return text


def _filter(col: ColumnInfo, op: str, value: Any, n: int, params: dict) -> str:
    c, base, what = ident(col.name), _base(col.pg_type), f"filter {n + 1} ({col.name})"
    if op == "is_null":
        return f"{c} IS NULL" if not col.pg_type.endswith("[]") else f"coalesce(cardinality({c}), 0) = 0"
    if op == "not_null":
        return f"{c} IS NOT NULL" if not col.pg_type.endswith("[]") else f"cardinality({c}) > 0"
    key = f"p{n}"
    if op == "in":
        items = value if isinstance(value, list) else str(value or "").split(",")
        if not items or len(items) > 100:
            raise BadSpec(f"{what}: give 1 to 100 values for 'in'.")
        params[key] = [_value(col, v, what) for v in items]
        return f"{c} = ANY(CAST(%({key})s AS {base}[]))"
    if op == "contains":
        if base != "text":
            raise BadSpec(f"{what}: 'contains' works on text columns only.")
        params[key] = "%" + str(_value(col, value, what)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return f"{c}::text ILIKE %({key})s"
    if col.pg_type.endswith("[]"):
        if op not in ("=", "!="):
            raise BadSpec(f"{what}: a list column can only be compared with = or !=.")
        params[key] = _value(col, value, what)
        return f"{'NOT ' if op == '!=' else ''}(CAST(%({key})s AS {base}) = ANY({c}))"
    if op in (">", ">=", "<", "<=") and base in ("text", "boolean"):
        raise BadSpec(f"{what}: {op} needs a number or date column.")
    params[key] = _value(col, value, what)
    sql_op = "IS DISTINCT FROM" if op == "!=" else op
    return f"{c} {sql_op} CAST(%({key})s AS {base})"


def _alias(text: str) -> str:
    return '"' + text.replace('"', "'").replace("%", " pct")[:60] + '"'


def build_sql(catalog: Catalog, spec: Any) -> Built:
    """SQL for a builder spec over the portal's mirror. Raises BadSpec naming the first bad part."""
    if not isinstance(spec, dict):
        raise BadSpec("Send a JSON object with entity, dimension, measure, aggregation, filters and chart_type.")
    entity = spec.get("entity")
    table = catalog.table(entity) if isinstance(entity, str) else None
    if table is None or table.kind != "entity":
        known = ", ".join(t.name for t in catalog.entity_tables) or "none yet: run a sync first"
        raise BadSpec(f"Unknown entity {entity!r}; known: {known}.")
    chart_type = normalize_type(spec.get("chart_type") or "bar")
    agg = str(spec.get("aggregation") or "count").lower()
    if agg not in AGGREGATIONS:
        raise BadSpec(f"Unknown aggregation {agg!r}; use one of {', '.join(AGGREGATIONS)}.")
    params: dict[str, Any] = {}
    select: list[str] = []
    out_spec: dict[str, Any] = {"chart_type": chart_type, "y": []}
    titles: list[str] = []
    group = 0
    for role in ("dimension", "series"):
        name = spec.get(role)
        if name in (None, ""):
            continue
        col = _column(table, name, role)
        expr = ident(col.name)
        bucket = spec.get("bucket") if role == "dimension" else None
        if _base(col.pg_type) in _TIME and bucket not in (None, ""):
            if bucket not in BUCKETS:
                raise BadSpec(f"Unknown bucket {bucket!r}; use one of {', '.join(BUCKETS)}.")
            expr = f"CAST(date_trunc('{bucket}', {expr}) AS date)"
        elif bucket not in (None, "") and role == "dimension":
            raise BadSpec(f"bucket applies to date columns only; {col.name} is {col.pg_type}.")
        if col.pg_type.endswith("[]"):
            expr = f"unnest({expr})"
        label = col.title or col.name
        label = f"{label} ({bucket})" if role == "dimension" and bucket else label
        select.append(f"{expr} AS {_alias(label)}")
        out_spec["x" if role == "dimension" else "series"] = label.replace('"', "'").replace("%", " pct")[:60]
        titles.append(label)
        group += 1
    measure = spec.get("measure")
    if measure in (None, ""):
        if agg != "count":
            raise BadSpec(f"{agg} needs a measure column.")
        mexpr, mlabel = "count(*)", "Count"
    else:
        mcol = _column(table, measure, "measure")
        base = _base(mcol.pg_type)
        if agg in ("sum", "avg") and base not in _NUMERIC:
            raise BadSpec(f"{agg} needs a numeric column; {mcol.name} is {mcol.pg_type}.")
        if agg in ("min", "max") and base not in _NUMERIC + _TIME:
            raise BadSpec(f"{agg} needs a number or date column; {mcol.name} is {mcol.pg_type}.")
        mexpr = f"{agg}({ident(mcol.name)})"
        mlabel = f"{mcol.title or mcol.name} ({agg})"
    select.append(f"{mexpr} AS {_alias(mlabel)}")
    out_spec["y"] = [mlabel.replace('"', "'").replace("%", " pct")[:60]]
    filters = spec.get("filters") or []
    if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
        raise BadSpec(f"filters must be a list of at most {MAX_FILTERS} conditions.")
    where = []
    for n, f in enumerate(filters):
        if not isinstance(f, dict):
            raise BadSpec(f"filter {n + 1} must be an object like {{\"column\": \"closed\", \"op\": \"=\", \"value\": \"false\"}}.")
        op = f.get("op", "=")
        if op not in OPS:
            raise BadSpec(f"filter {n + 1}: unknown condition {op!r}; use one of {', '.join(OPS)}.")
        where.append(_filter(_column(table, f.get("column"), f"filter {n + 1}"), op, f.get("value"), n, params))
    try:
        limit = max(1, min(int(spec.get("limit") or 500), MAX_LIMIT))
    except (TypeError, ValueError):
        raise BadSpec("limit must be a number.") from None
    sql = f"SELECT {', '.join(select)} FROM {ident(catalog.schema)}.{ident(table.name)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(group))
        sql += " ORDER BY " + (f"{group + 1} DESC" if chart_type in ("pie", "donut", "funnel") else ", ".join(str(i + 1) for i in range(group)))
    sql += f" LIMIT {limit + 1}"
    what = f"{mlabel} by {' and '.join(titles)}" if titles else mlabel
    out_spec["title"] = str(spec.get("title") or f"{table.title}: {what}")[:200]
    return Built(sql, params, out_spec, limit)
