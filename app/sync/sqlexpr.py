"""Typed columns computed by PostgreSQL from the raw record (one SQL expression per column).

Loading copies raw records into a staging table and lets one INSERT ... SELECT derive every typed column
and label, so the CPU-heavy part runs in PostgreSQL's C code instead of Python; the same expressions
re-derive columns in place when a field changes type (`rebuild_sql`). The helper functions live in the
`hub24` schema (migration 0006) and never raise on a malformed value: it becomes NULL, and the raw record
keeps it. `app.sync.transform` is the independent Python reading of the same rules that `verify` uses as
its oracle.
"""
from __future__ import annotations

from .columns import Column
from .schema import ident

SCALAR_SQL = {
    "int": "hub24.to_bigint({t})", "category": "hub24.to_bigint({t})", "enum": "hub24.to_bigint({t})",
    "num": "hub24.to_numeric({t})", "yn": "hub24.to_bool({t})", "date": "hub24.to_date({t})",
    "datetime": "hub24.to_ts({t})", "text": "{t}", "status": "{t}",
}


def _value(rec: str, col: Column) -> str:
    return f"{rec}.{_quote(col.source)}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _needs_json(col: Column) -> bool:
    return col.multiple or col.pg_type == "jsonb"


def record_columns(columns: list[Column]) -> str:
    """The column list for `jsonb_to_record(doc) AS r(...)`: every source key read once per row.

    Scalar fields are read as text (strings unquoted, numbers and flags as printed; a list or object as its
    JSON text), multiple and JSON fields as jsonb. Expanding the document once matters: each
    `doc -> 'key'` on a large (TOASTed) document decompresses all of it again.
    """
    kinds: dict[str, str] = {"id": "text"}
    for c in columns:
        if c.source and c.source != "id":
            kinds[c.source] = "jsonb" if _needs_json(c) or kinds.get(c.source) == "jsonb" else "text"
    return ", ".join(f"{_quote(k)} {t}" for k, t in kinds.items())


def _lit(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"




def _elements(v: str) -> str:
    """A set of element texts: a list as is, a scalar as a one-element list, nothing for null/""/false."""
    return (f"jsonb_array_elements_text(CASE WHEN jsonb_typeof({v}) = 'array' THEN {v} "
            f"WHEN {v} IS NULL OR {v} IN ('null'::jsonb, '\"\"'::jsonb, 'false'::jsonb) THEN '[]'::jsonb "
            f"ELSE jsonb_build_array({v}) END)")


def _label_source(schema: str, table: str, col: Column) -> str | None:
    """A relation (key, label) for a label column, unique by key, or None when there is nothing to look up."""
    s = ident(schema)
    if col.field_type == "enumeration":
        return (f"SELECT item_id AS key, value AS label FROM {s}.enum_items WHERE table_name = {_lit(table)} "
                f"AND column_name = {_lit(col.label_of)}")
    if col.field_type == "crm_category":
        return f"SELECT DISTINCT ON (id) id AS key, name AS label FROM {s}.categories ORDER BY id, entity_type_id"
    if not col.status_type:
        return None
    from .transform import status_family

    return (f"SELECT DISTINCT ON (status_id) status_id AS key, name AS label FROM {s}.statuses "
            f"WHERE family = {_lit(status_family(col.status_type))} ORDER BY status_id, entity_id DESC")


def base_expr(col: Column, rec: str) -> str:
    """The SQL expression of a non-label column over `rec`, a `jsonb_to_record` row of the record's keys."""
    v = _value(rec, col)  # text for scalar fields, jsonb for multiple and JSON ones (record_columns)
    if col.kind in ("money", "money_currency"):
        part = (lambda t: f"hub24.to_numeric(split_part({t}, '|', 1))") if col.kind == "money" else \
               (lambda t: f"NULLIF(split_part({t}, '|', 2), '')")
        if col.multiple:
            return f"ARRAY(SELECT {part('lk_u.x')} FROM {_elements(v)} WITH ORDINALITY lk_u(x, n) ORDER BY lk_u.n)"
        return f"(CASE WHEN {v} = '' THEN NULL ELSE {part(v)} END)"
    if col.pg_type == "jsonb":
        return f"(CASE WHEN jsonb_typeof({v}) = 'null' THEN NULL ELSE {v} END)"
    fn = SCALAR_SQL.get(col.kind, "{t}")
    if col.multiple:
        elem_type = col.pg_type[:-2]
        return f"ARRAY(SELECT {fn.format(t='lk_u.x')} FROM {_elements(v)} WITH ORDINALITY lk_u(x, n) ORDER BY lk_u.n)::{elem_type}[]"
    return fn.format(t=v)


def typed_select(columns: list[Column], schema: str, table: str, source: str, doc: str, extra: str = "") -> str:
    """A SELECT giving `id`, every column (table order) and `raw` for the documents `doc` of `source`.

    Two levels: the inner query expands each document once (`jsonb_to_record`) and computes the typed
    columns; the outer one adds labels by joining small, unique lookup relations (hash joins, not a
    sub-query per row). `extra` is appended to the inner query (a WHERE clause).
    """
    base = [c for c in columns if c.kind != "label"]
    inner = ", ".join([f"hub24.to_bigint(r.\"id\") AS id", *(f"{base_expr(c, 'r')} AS {ident(c.name)}" for c in base),
                       f"{doc} AS raw"])
    joins, outer = [], []
    for n, col in enumerate(columns):
        if col.kind != "label":
            outer.append(f"b.{ident(col.name)}")
            continue
        src = _label_source(schema, table, col)
        if src is None:
            outer.append(f"NULL::{col.pg_type} AS {ident(col.name)}")
        elif col.multiple:
            outer.append(f"ARRAY(SELECT l.label FROM unnest(b.{ident(col.label_of)}) WITH ORDINALITY lk_u(x, n) "
                         f"LEFT JOIN ({src}) l ON l.key = lk_u.x ORDER BY lk_u.n) AS {ident(col.name)}")
        else:
            joins.append(f"LEFT JOIN ({src}) l{n} ON l{n}.key = b.{ident(col.label_of)}")
            outer.append(f"l{n}.label AS {ident(col.name)}")
    return (f"SELECT b.id, {', '.join(outer) or 'NULL'}, b.raw FROM (SELECT {inner} FROM {source}, "
            f"LATERAL jsonb_to_record({doc}) AS r({record_columns(columns)}) {extra}) b {' '.join(joins)}")
