"""Turn read-API query parameters into safe SQL over a portal's mirror.

Identifiers come only from the mirror's own `fields` table (plus `id` and `synced_at`), are checked by
`app.sync.schema.ident`, and are never taken from the request as text; every value is parsed to its
column's type in Python and bound as a parameter. Anything that does not parse is a `BadQuery` whose
message names the parameter and what it expects (the view answers 400).

Parameters: ``<column>=v`` or ``<column>[op]=v`` with op in eq, ne, gt, gte, lt, lte, in (comma-separated),
contains (text: substring, any case; array columns: holds the value); ``sort=-opportunity,title``;
``fields=id,title``; ``limit`` (1..500, default 50) with ``offset`` or ``cursor`` (id order only).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..sync.schema import ident

RESERVED = frozenset({"limit", "offset", "cursor", "sort", "fields", "portal", "portal_id", "member_id"})
OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ALL_OPS = (*OPS, "in", "contains")
MAX_LIMIT, DEFAULT_LIMIT, MAX_OFFSET, MAX_IN = 500, 50, 1_000_000, 500
_KEY = re.compile(r"^([a-z_][a-z0-9_]{0,62})(?:\[([a-z]{1,10})\])?$")
_PG_TYPES = {"bigint", "integer", "numeric", "double precision", "boolean", "date", "timestamptz", "text", "jsonb"}
_TRUE, _FALSE = {"true", "1", "y", "yes"}, {"false", "0", "n", "no"}


class BadQuery(ValueError):
    """A read-API parameter that cannot be used; the message says which and what it expects."""


@dataclass(frozen=True)
class Col:
    """One column of a mirrored table, as the mirror's `fields` table describes it."""

    name: str
    pg_type: str  # without []
    is_multiple: bool
    title: str
    b24_field: str | None = None

    @property
    def filterable(self) -> bool:
        return self.pg_type != "jsonb"


def load_columns(conn: Connection, schema: str, table: str) -> dict[str, Col]:
    """The columns of `schema.table` a caller may name: `fields` rows plus `id` and `synced_at`."""
    cols = {"id": Col("id", "bigint", False, "ID", "id"),
            "synced_at": Col("synced_at", "timestamptz", False, "Mirrored at")}
    rows = conn.execute(text(f"SELECT column_name, pg_type, is_multiple, title, b24_field FROM {ident(schema)}.fields "
                             "WHERE table_name = :t ORDER BY column_name"), {"t": table})
    for name, pg_type, multiple, title, b24 in rows:
        base = pg_type[:-2] if pg_type.endswith("[]") else pg_type
        if base in _PG_TYPES and _KEY.match(name):
            cols[name] = Col(name, base, bool(multiple) or pg_type.endswith("[]"), title or name, b24)
    return cols


def parse_value(col: Col, raw: str, param: str) -> Any:
    """`raw` as a value of `col`'s type; raises BadQuery naming `param` and the expected form."""
    raw = raw.strip()
    t = col.pg_type
    try:
        if t in ("bigint", "integer"):
            if not re.fullmatch(r"-?\d{1,18}", raw):
                raise ValueError
            return int(raw)
        if t in ("numeric", "double precision"):
            value = Decimal(raw)
            if not value.is_finite():
                raise ValueError
            return value
        if t == "boolean":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError
        if t == "date":
            return date.fromisoformat(raw)
        if t == "timestamptz":
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, InvalidOperation):
        expected = {"bigint": "a whole number", "integer": "a whole number", "numeric": "a number",
                    "double precision": "a number", "boolean": "true or false", "date": "a date YYYY-MM-DD",
                    "timestamptz": "a date-time like 2024-05-01T10:00:00+00:00"}[t]
        raise BadQuery(f"{param}: expected {expected}, got {raw[:40]!r}") from None
    if len(raw) > 1000:
        raise BadQuery(f"{param}: a value may be at most 1000 characters")
    return raw


def _unknown(name: str, cols: dict[str, Col]) -> BadQuery:
    near = [c for c in cols if name[:4] in c][:5]
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return BadQuery(f"unknown column {name!r}.{hint} The table's columns are listed under \"columns\" at "
                    "GET /api/v1/crm/{entity}/fields.")


def parse_filters(args: Iterable[tuple[str, str]], cols: dict[str, Col]) -> tuple[list[str], dict[str, Any]]:
    """WHERE conditions and bound parameters for the filter parameters in `args` (pairs; repeats are ANDed)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    for n, (key, raw) in enumerate(args):
        if key in RESERVED:
            continue
        m = _KEY.match(key)
        if not m:
            raise BadQuery(f"unknown parameter {key[:60]!r}; filter with <column>=value or <column>[op]=value")
        name, op = m.group(1), m.group(2) or "eq"
        col = cols.get(name)
        if col is None:
            raise _unknown(name, cols)
        if op not in ALL_OPS:
            raise BadQuery(f"{key}: unknown operator {op!r}; use one of {', '.join(ALL_OPS)}")
        if not col.filterable:
            raise BadQuery(f"{key}: column {name} holds structured data (files, JSON) and cannot be filtered")
        p, c, cast = f"p{n}", ident(col.name), col.pg_type
        if col.is_multiple:
            if op == "contains":
                where.append(f"CAST(:{p} AS {cast}) = ANY({c})")
                params[p] = parse_value(col, raw, key)
            elif op == "in":
                where.append(f"{c} && CAST(:{p} AS {cast}[])")
                params[p] = _list(col, raw, key)
            else:
                raise BadQuery(f"{key}: {name} is a list column; use {name}[contains]=v or {name}[in]=a,b")
            continue
        if op == "in":
            where.append(f"{c} = ANY(CAST(:{p} AS {cast}[]))")
            params[p] = _list(col, raw, key)
        elif op == "contains":
            if col.pg_type != "text":
                raise BadQuery(f"{key}: contains works on text columns; {name} is {col.pg_type}")
            where.append(f"{c} ILIKE :{p} ESCAPE '\\'")
            params[p] = "%" + re.sub(r"([\\%_])", r"\\\1", raw.strip()[:1000]) + "%"
        else:
            if col.pg_type == "boolean" and op not in ("eq", "ne"):
                raise BadQuery(f"{key}: {name} is true/false; use eq or ne")
            where.append(f"{c} {OPS[op]} CAST(:{p} AS {cast})")
            params[p] = parse_value(col, raw, key)
    return where, params


def _list(col: Col, raw: str, key: str) -> list:
    parts = [x for x in raw.split(",") if x.strip()]
    if not parts or len(parts) > MAX_IN:
        raise BadQuery(f"{key}: give 1 to {MAX_IN} comma-separated values")
    return [parse_value(col, x, key) for x in parts]


def parse_sort(value: str | None, cols: dict[str, Col]) -> list[tuple[str, bool]]:
    """[(column, descending)] from ``sort=-a,b``; `id` is always the last key so pages are stable."""
    keys: list[tuple[str, bool]] = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("-+")
        col = cols.get(name)
        if col is None:
            raise _unknown(name, cols)
        if col.is_multiple or not col.filterable:
            raise BadQuery(f"sort: {name} is a list or structured column and cannot be sorted by")
        if name not in (k for k, _ in keys):
            keys.append((name, desc))
    if len(keys) > 5:
        raise BadQuery("sort: at most 5 columns")
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", keys[0][1] if keys and keys[0][0] == "id" else False))
    return keys


def parse_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter within [low, high]; raises BadQuery."""
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d{1,9}", value.strip()):
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    n = int(value)
    if not low <= n <= high:
        raise BadQuery(f"{name} must be from {low} to {high}")
    return n


def parse_fields(value: str | None, cols: dict[str, Col]) -> list[str]:
    """The columns to return (default: every known column)."""
    if not value:
        return list(cols)
    out = []
    for name in (p.strip() for p in value.split(",")):
        if name and name not in cols:
            raise _unknown(name, cols)
        if name and name not in out:
            out.append(name)
    if "id" not in out:
        out.insert(0, "id")
    return out


def encode_cursor(last_id: int, desc: bool) -> str:
    """An opaque cursor for the page after `last_id`."""
    return base64.urlsafe_b64encode(json.dumps({"after": last_id, "desc": desc}).encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[int, bool]:
    """(last id, descending) from a cursor; raises BadQuery for anything not made by `encode_cursor`."""
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return int(data["after"]), bool(data["desc"])
    except (ValueError, KeyError, TypeError):
        raise BadQuery("cursor is not one this API handed out; start again without it") from None


def to_json(value: Any) -> Any:
    """A database value as JSON: numbers as numbers, times as ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2 ** 53 else float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value
