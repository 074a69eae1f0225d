"""Run a chart query as the portal's read-only role, in a read-only transaction, with a statement timeout.

`execute()` is the second wall behind the guard and holds on its own: inside a savepoint (or a
transaction of its own) it sets `transaction_read_only`, `ROLE` (the portal's reader role: SELECT on its
own schema, nothing else), `statement_timeout`, `lock_timeout` and `search_path` (the portal's schema
only), runs exactly one statement and always rolls back, which also restores the session's role and
settings. A DROP, DELETE, UPDATE or INSERT fails on the read-only transaction and the role; a read of
another portal's schema or of the app's own tables fails on the role. `run_guarded()` adds the guard.

Results are JSON-safe: numbers, strings, booleans, ISO dates, lists and objects only.
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import psycopg2
import psycopg2.errors
import sqlglot
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from ..sync.schema import ident, reader_role, schema_name
from . import guard
from .errors import ChartError, QueryFailed, QueryTimeout, Refused

DEFAULT_TIMEOUT_MS = 10_000
MAX_CELL_CHARS = 2_000

# PostgreSQL type OIDs -> the kind the renderer and the page care about.
_NUMBER = {20, 21, 23, 26, 700, 701, 790, 1700}
_KIND = {16: "bool", 1082: "date", 1114: "datetime", 1184: "datetime", 1083: "time", 1186: "interval",
         114: "json", 3802: "json", 25: "text", 1043: "text", 1042: "text", 19: "text"}


@dataclass
class Result:
    """Rows of a chart query: `columns`, their `kinds` (number, text, date, datetime, bool, json, ...)."""

    columns: list[str]
    kinds: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    elapsed_ms: float = 0.0
    sql: str = ""
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"columns": self.columns, "kinds": self.kinds, "rows": self.rows, "row_count": len(self.rows),
                "truncated": self.truncated, "elapsed_ms": round(self.elapsed_ms, 1)}


def json_value(value: Any) -> Any:
    """One database value as JSON: Decimal -> int/float, dates -> ISO text, bytes -> base64, long text cut."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_CELL_CHARS else value[:MAX_CELL_CHARS] + "…"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)[:MAX_CELL_CHARS]).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)[:MAX_CELL_CHARS]


def single_statement(sql: str) -> None:
    """Refuse text holding more than one statement (checked on tokens, so strings and comments do not count).

    Not a policy check: even with the guard off, a second statement could undo the role (`RESET ROLE`).
    """
    try:
        tokens = sqlglot.tokenize(sql, read="postgres")
    except TokenError:
        raise Refused("The query could not be read (an unterminated string or comment?).") from None
    semis = [i for i, t in enumerate(tokens) if t.token_type == TokenType.SEMICOLON]
    if any(i != len(tokens) - 1 for i in semis):
        raise Refused("Exactly one statement is allowed.")


def portal_tables(conn: Connection, portal_id: int) -> frozenset[str]:
    """Names of the tables and views in the portal's mirror schema (empty when it was never synced)."""
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'v', 'm', 'p')"), {"s": schema_name(portal_id)})
    return frozenset(rows.scalars())


def _first_line(exc: psycopg2.Error) -> str:
    msg = (getattr(exc, "pgerror", None) or str(exc) or exc.__class__.__name__).strip()
    return msg.splitlines()[0][:400].removeprefix("ERROR:").strip()


def execute(conn: Connection, portal_id: int, sql: str, params: Mapping[str, Any] | None = None, *,
            max_rows: int = guard.DEFAULT_MAX_ROWS, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Result:
    """Run one statement as the portal's read-only role and return at most `max_rows` rows.

    `params` are psycopg2 parameters (`%(name)s`); without them the text is sent as is. Raises Refused
    for more than one statement, QueryTimeout when the statement timeout fires, QueryFailed for any
    other database error (its message is PostgreSQL's first line), ChartError(`not_synced`) when the
    portal has no mirror yet. Nothing the statement does survives: the transaction is always rolled back.
    """
    single_statement(sql)
    schema = schema_name(portal_id)
    role = reader_role(conn, portal_id)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    if not exists:
        raise ChartError("This portal's CRM has not been mirrored yet; start a sync first.", code="not_synced")
    tx = conn.begin_nested() if conn.in_transaction() else conn.begin()
    started = time.perf_counter()
    try:
        cur = conn.connection.cursor()
        try:
            cur.execute("SET LOCAL transaction_read_only = on")
            cur.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            cur.execute(f"SET LOCAL lock_timeout = {min(int(timeout_ms), 2000)}")
            cur.execute(f"SET LOCAL search_path = {ident(schema)}")
            try:
                cur.execute(f"SET LOCAL ROLE {ident(role)}")
            except psycopg2.errors.InsufficientPrivilege:
                raise ChartError("Hub24's database user may not assume the portal's read-only role; "
                                 f"grant it: GRANT {role} TO <hub24 database user>.", code="role_unavailable") from None
            try:
                if params:
                    cur.execute(sql, dict(params))
                else:
                    cur.execute(sql)
            except psycopg2.errors.QueryCanceled:
                raise QueryTimeout(f"The query ran longer than {timeout_ms / 1000:g} s and was stopped.") from None
            except psycopg2.Error as exc:
                raise QueryFailed(_first_line(exc)) from None
            if cur.description is None:
                return Result([], [], [], sql=sql, elapsed_ms=(time.perf_counter() - started) * 1000)
            columns = [d.name for d in cur.description]
            kinds = ["number" if d.type_code in _NUMBER else _KIND.get(d.type_code, "other") for d in cur.description]
            rows = cur.fetchmany(max_rows + 1)
        finally:
            cur.close()
    finally:
        tx.rollback()  # read-only work: nothing to keep, and the role and settings go back with it
    elapsed = (time.perf_counter() - started) * 1000
    truncated = len(rows) > max_rows
    out = [[json_value(v) for v in row] for row in rows[:max_rows]]
    return Result(columns, kinds, out, truncated=truncated, elapsed_ms=elapsed, sql=sql, params=dict(params or {}))


def run_guarded(conn: Connection, portal_id: int, sql: str, *, max_rows: int = guard.DEFAULT_MAX_ROWS,
                timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Result:
    """Guard `sql` for the portal (guard.check) and run what the guard returns.

    Raises Refused (guard), QueryTimeout / QueryFailed (database) or ChartError(`not_synced`).
    """
    tables = portal_tables(conn, portal_id)
    if not tables:
        raise ChartError("This portal's CRM has not been mirrored yet; start a sync first.", code="not_synced")
    checked = guard.check(sql, schema=schema_name(portal_id), tables=tables, max_rows=max_rows)
    return execute(conn, portal_id, checked.sql, max_rows=checked.limit, timeout_ms=timeout_ms)
