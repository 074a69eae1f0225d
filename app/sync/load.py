"""Streamed loading: raw records go through a staging table by COPY, then one INSERT ... SELECT per chunk.

Memory stays flat whatever the portal's size: callers feed chunks (one batch call's worth of records).
Each chunk is copied as JSON documents into a temporary table; PostgreSQL derives every typed column and
label from the document (`sqlexpr`), skips rows whose raw record did not change, and the multi-fields and
contact links of the rows it wrote are replaced in two more statements.
"""
from __future__ import annotations

from array import array
from typing import Sequence

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .columns import Column
from .schema import ident
from .sqlexpr import typed_select

_STAGE = "_hub24_stage"
_WRITTEN = "_hub24_written"
_SQL_CACHE: dict[tuple, str] = {}


def _copy_lines(records: Sequence[dict]) -> bytes:
    # COPY's text format: one document per line; backslashes doubled (orjson escapes control characters).
    return b"".join(orjson.dumps(r).replace(b"\\", b"\\\\") + b"\n" for r in records)


class Staged:
    """A chunk already in COPY form: what a full sync's fetching thread hands to the loader.

    The parsed records of one batch call take about five times the memory of their JSON; turning them into
    COPY lines (and keeping their ids) as soon as they arrive keeps a full sync's memory flat however many
    calls are in flight. Records must have distinct ids (keyset pages do).
    """

    __slots__ = ("lines", "ids")

    def __init__(self, records: Sequence[dict]):
        self.ids = array("q", (int(r["id"]) for r in records))
        self.lines = _copy_lines(records)

    def __len__(self) -> int:
        return len(self.ids)


def _stage(conn: Connection, records: "Sequence[dict] | Staged") -> None:
    import io

    if not conn.exec_driver_sql(f"SELECT to_regclass('pg_temp.{_STAGE}')").scalar():
        conn.exec_driver_sql(f"CREATE TEMP TABLE {_STAGE} (doc jsonb NOT NULL) ON COMMIT DELETE ROWS")
        # Staged documents live for one chunk: compressing them would only burn CPU.
        conn.exec_driver_sql(f"ALTER TABLE {_STAGE} ALTER COLUMN doc SET STORAGE EXTERNAL")
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_WRITTEN} (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS")
    conn.exec_driver_sql(f"TRUNCATE {_STAGE}, {_WRITTEN}")
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        lines = records.lines if isinstance(records, Staged) else _copy_lines(records)
        cursor.copy_expert(f"COPY {_STAGE} (doc) FROM STDIN", io.BytesIO(lines))
    finally:
        cursor.close()


def _upsert_sql(schema: str, table: str, columns: Sequence[Column], force: bool) -> str:
    key = (schema, table, tuple((c.name, c.pg_type, c.kind, c.source, c.label_of, c.status_type) for c in columns), force)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        s, t = ident(schema), ident(table)
        names = ["id", *(c.name for c in columns), "raw"]
        col_list = ", ".join(ident(n) for n in names)
        updates = ", ".join(f"{ident(n)} = EXCLUDED.{ident(n)}" for n in names[1:])
        where = "" if force else f" WHERE {t}.raw IS DISTINCT FROM EXCLUDED.raw"
        select = typed_select(list(columns), schema, table, f"{_STAGE} st", "st.doc")
        sql = (f"WITH up AS (INSERT INTO {s}.{t} ({col_list})\n"
               f"SELECT * FROM ({select}) x WHERE x.id IS NOT NULL\n"
               f"ON CONFLICT (id) DO UPDATE SET {updates}, synced_at = now(){where}\nRETURNING id)\n"
               f"INSERT INTO {_WRITTEN} SELECT id FROM up")
        _SQL_CACHE[key] = sql
    return sql


def load_records(conn: Connection, schema: str, table: str, columns: Sequence[Column],
                 records: "Sequence[dict] | Staged", *, force: bool = False) -> int:
    """Insert or update raw `records` (dicts, or a `Staged` chunk) by id, with typed columns, labels,
    multi-fields and contact links.

    A record whose raw form is unchanged is skipped unless `force`. Returns the number of rows written.
    """
    if not len(records):
        return 0
    if not isinstance(records, Staged):
        records = list({str(r.get("id")): r for r in records}.values())  # one row per id (the last reading wins)
    _stage(conn, records)
    written = conn.exec_driver_sql(_upsert_sql(schema, table, columns, force)).rowcount
    if written:
        _replace_links(conn, schema, table)
    return written


def _replace_links(conn: Connection, schema: str, table: str) -> None:
    s = ident(schema)
    p = {"t": table}
    conn.execute(text(f"DELETE FROM {s}.multifields m USING {_WRITTEN} w WHERE m.table_name = :t AND m.entity_id = w.id"), p)
    conn.execute(text(f"DELETE FROM {s}.item_contacts c USING {_WRITTEN} w WHERE c.table_name = :t AND c.entity_id = w.id"), p)
    conn.execute(text(
        f"INSERT INTO {s}.multifields (table_name, entity_id, type_id, value_type, value, item_id) "
        f"SELECT :t, w.id, coalesce(e ->> 'typeId', ''), e ->> 'valueType', e ->> 'value', coalesce(e ->> 'id', '') "
        f"FROM {_STAGE} st JOIN {_WRITTEN} w ON w.id = hub24.to_bigint(st.doc ->> 'id'), "
        f"jsonb_array_elements(CASE jsonb_typeof(st.doc -> 'fm') WHEN 'array' THEN st.doc -> 'fm' ELSE '[]'::jsonb END) e "
        f"WHERE coalesce(e ->> 'value', '') <> ''"), p)
    conn.execute(text(
        f"INSERT INTO {s}.item_contacts (table_name, entity_id, contact_id) "
        f"SELECT DISTINCT :t, w.id, hub24.to_bigint(c) "
        f"FROM {_STAGE} st JOIN {_WRITTEN} w ON w.id = hub24.to_bigint(st.doc ->> 'id'), "
        f"jsonb_array_elements_text(CASE jsonb_typeof(st.doc -> 'contactIds') WHEN 'array' THEN st.doc -> 'contactIds' "
        f"ELSE '[]'::jsonb END) c WHERE hub24.to_bigint(c) IS NOT NULL ON CONFLICT DO NOTHING"), p)


def rebuild_columns(conn: Connection, schema: str, table: str, columns: Sequence[Column], *, batch: int = 20000) -> int:
    """Re-derive every typed column from `raw` in place (after a field changed type or its labels changed)."""
    s, t = ident(schema), ident(table)
    if not columns:
        return 0
    sets = ", ".join(f"{ident(c.name)} = x.{ident(c.name)}" for c in columns)
    select = typed_select(list(columns), schema, table, f"{s}.{t} src", "src.raw",
                          extra="WHERE src.id > :last AND src.id <= :top")
    total, last = 0, -1
    while True:
        top = conn.execute(text(f"SELECT max(id) FROM (SELECT id FROM {s}.{t} WHERE id > :last ORDER BY id LIMIT :n) x"),
                           {"last": last, "n": batch}).scalar()
        if top is None:
            return total
        total += conn.execute(text(f"UPDATE {s}.{t} AS tgt SET {sets} FROM ({select}) x WHERE tgt.id = x.id"),
                              {"last": last, "top": top}).rowcount
        last = top


def delete_ids(conn: Connection, schema: str, table: str, ids: Sequence[int]) -> int:
    """Delete rows (and their multi-fields and links) by id; returns how many rows were deleted."""
    if not ids:
        return 0
    s, t = ident(schema), ident(table)
    ids = list(ids)
    conn.execute(text(f"DELETE FROM {s}.multifields WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    conn.execute(text(f"DELETE FROM {s}.item_contacts WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    return conn.execute(text(f"DELETE FROM {s}.{t} WHERE id = ANY(:ids)"), {"ids": ids}).rowcount
