"""Streamed loading: rows go through a staging table by COPY, then one INSERT ... ON CONFLICT per chunk.

Memory stays flat whatever the portal's size: callers feed chunks (one batch call's worth of records),
each chunk is copied as JSON documents into a temporary table and merged with `jsonb_populate_record`,
which maps JSON arrays onto PostgreSQL arrays and ISO strings onto dates and times.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .columns import Column
from .schema import ident


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _copy_documents(conn: Connection, docs: Iterable[str]) -> int:
    """COPY JSON documents into the session's temporary staging table; return how many."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    n = 0
    for doc in docs:
        writer.writerow([doc])
        n += 1
    buf.seek(0)
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _hub24_stage (doc jsonb NOT NULL) ON COMMIT DELETE ROWS")
    conn.exec_driver_sql("TRUNCATE _hub24_stage")
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert("COPY _hub24_stage (doc) FROM STDIN WITH (FORMAT csv)", buf)
    finally:
        cursor.close()
    return n


def upsert_rows(conn: Connection, schema: str, table: str, columns: Sequence[Column], rows: Sequence[dict],
                *, force: bool = False) -> int:
    """Insert or update `rows` (dicts from transform.to_row) by id; returns the number of rows written.

    A row whose raw record is unchanged is skipped unless `force` (used after the columns changed).
    """
    if not rows:
        return 0
    s, t = ident(schema), ident(table)
    _copy_documents(conn, (json.dumps(r, ensure_ascii=False, default=_default) for r in rows))
    names = ["id", *(c.name for c in columns), "raw"]
    col_list = ", ".join(ident(n) for n in names)
    sel_list = ", ".join(f"r.{ident(n)}" for n in names)
    updates = ", ".join(f"{ident(n)} = EXCLUDED.{ident(n)}" for n in names[1:])
    result = conn.exec_driver_sql(
        f"INSERT INTO {s}.{t} ({col_list}, synced_at) "
        f"SELECT DISTINCT ON (r.id) {sel_list}, now() FROM _hub24_stage st, "
        f"LATERAL jsonb_populate_record(NULL::{s}.{t}, st.doc) r WHERE r.id IS NOT NULL "
        f"ON CONFLICT (id) DO UPDATE SET {updates}, synced_at = now()"
        + ("" if force else f" WHERE {t}.raw IS DISTINCT FROM EXCLUDED.raw"))
    return result.rowcount


def replace_links(conn: Connection, schema: str, table: str, entity_ids: Sequence[int],
                  multifields: Iterable[tuple[int, str, str, str, str]], contacts: Iterable[tuple[int, int]]) -> None:
    """Replace the multi-field values and contact links of `entity_ids` with the given ones."""
    if not entity_ids:
        return
    s = ident(schema)
    ids = list(entity_ids)
    conn.execute(text(f"DELETE FROM {s}.multifields WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    conn.execute(text(f"DELETE FROM {s}.item_contacts WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    mf = [{"t": table, "e": e, "ty": ty, "vt": vt, "v": v, "i": i} for e, ty, vt, v, i in multifields]
    if mf:
        conn.execute(text(f"INSERT INTO {s}.multifields (table_name, entity_id, type_id, value_type, value, item_id) "
                          "VALUES (:t, :e, :ty, :vt, :v, :i)"), mf)
    links = [{"t": table, "e": e, "c": c} for e, c in set(contacts)]
    if links:
        conn.execute(text(f"INSERT INTO {s}.item_contacts (table_name, entity_id, contact_id) VALUES (:t, :e, :c) "
                          "ON CONFLICT DO NOTHING"), links)


def delete_ids(conn: Connection, schema: str, table: str, ids: Sequence[int]) -> int:
    """Delete rows (and their multi-fields and links) by id; returns how many rows were deleted."""
    if not ids:
        return 0
    s, t = ident(schema), ident(table)
    ids = list(ids)
    conn.execute(text(f"DELETE FROM {s}.multifields WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    conn.execute(text(f"DELETE FROM {s}.item_contacts WHERE table_name = :t AND entity_id = ANY(:ids)"), {"t": table, "ids": ids})
    return conn.execute(text(f"DELETE FROM {s}.{t} WHERE id = ANY(:ids)"), {"ids": ids}).rowcount
