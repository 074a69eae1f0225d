"""What SQL may run against a portal's mirror: exactly one read-only query over the portal's own tables.

`check(sql, schema=..., tables=...)` parses the text with sqlglot (PostgreSQL dialect) and refuses it
(`Refused`, with one plain sentence) unless:

- it is exactly one statement, a SELECT (CTEs, set operations, subqueries and joins are fine);
- nothing in it writes, locks, changes settings or runs a command (INSERT/UPDATE/DELETE/MERGE in a CTE,
  SELECT INTO, FOR UPDATE, COPY, SET, DDL, EXPLAIN, ...);
- every table it reads is one of the portal's tables (`tables`), unqualified or qualified with the
  portal's own schema; any other schema, `pg_catalog`, `information_schema` or a catalog is refused;
- every function is an ordinary one: functions with side effects or access to files, other databases,
  sessions or settings (`pg_sleep`, `pg_read_file`, `dblink`, `lo_*`, `set_config`, `nextval`,
  `pg_terminate_backend`, ...) are refused, and so is any function sqlglot does not know unless it is on
  a short list of harmless PostgreSQL functions.

The query that runs is the one sqlglot regenerates from the checked tree (not the original text), with
every table qualified by the portal's schema and a row limit added or capped, so what was checked is
exactly what runs. This guard is the first wall; the runner's read-only role and transaction are the
second (see runner.py), and they hold even with the guard switched off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from .errors import Refused

MAX_SQL_CHARS = 20_000
DEFAULT_MAX_ROWS = 5_000

# Nodes that write, lock, change state or are not queries at all; refused wherever they appear.
_FORBIDDEN_NODES: tuple[type, ...] = tuple(
    getattr(exp, name) for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterColumn", "Command", "Copy",
        "Set", "SetItem", "Transaction", "Commit", "Rollback", "Grant", "Revoke", "Into", "Lock", "TruncateTable",
        "LoadData", "Use", "Pragma", "Describe", "Kill", "Cache", "Uncache", "Refresh", "Comment", "Analyze",
        "Summarize", "Attach", "Detach", "Export", "Install",
    ) if hasattr(exp, name))

# Function names (lower case) refused outright, whatever sqlglot calls them.
_DENY = re.compile(
    r"^(pg_|lo_|dblink|set_config|current_setting|nextval|setval|currval|lastval|txid_|query_to_xml|"
    r"table_to_xml|schema_to_xml|database_to_xml|cursor_to_xml|ts_stat|xpath|copy|sleep|read_|file|"
    r"inet_|version|current_(setting|user|role|database|schema|schemas|catalog|query|version)|session_user|has_|"
    r"row_security|binary_upgrade|brin_|gin_|make_aclitem|acl)")

# PostgreSQL functions sqlglot parses as "anonymous" that are harmless and useful for CRM charts.
SAFE_ANONYMOUS = frozenset({
    "age", "cardinality", "make_date", "make_timestamptz", "timezone", "isfinite", "justify_days",
    "justify_hours", "date_part", "every", "bool_or", "num_nulls", "num_nonnulls", "scale", "trim_scale",
    "gcd", "lcm", "translate", "regexp_match", "regexp_matches", "array_ndims", "generate_subscripts",
    "jsonb_array_length", "json_array_length", "jsonb_extract_path", "jsonb_extract_path_text",
    "json_extract_path_text", "jsonb_build_object", "json_build_object", "jsonb_build_array", "jsonb_agg",
    "to_jsonb", "to_json", "jsonb_typeof", "jsonb_each", "jsonb_each_text", "jsonb_array_elements",
    "jsonb_array_elements_text", "json_array_elements", "json_array_elements_text", "jsonb_object_keys",
    "jsonb_object_agg", "json_object_agg", "array_upper", "array_lower", "to_char", "extract", "random",
})


@dataclass(frozen=True)
class Guarded:
    """A checked query: `sql` is what may run; `tables` are the portal tables it reads."""

    sql: str
    tables: frozenset[str] = field(default_factory=frozenset)
    limit: int = DEFAULT_MAX_ROWS  # rows the caller should show (the SQL fetches one more to detect truncation)


def _name(ident: exp.Expression | None) -> str:
    """An identifier as PostgreSQL sees it: unquoted names fold to lower case."""
    if ident is None:
        return ""
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted else ident.this.lower()
    return ident.name.lower()


def _visible_ctes(node: exp.Expression) -> set[str]:
    """CTE names visible at `node`: those of every enclosing query's WITH clause (scope-aware)."""
    names: set[str] = set()
    parent = node.parent
    while parent is not None:
        with_ = parent.args.get("with_") or parent.args.get("with") if isinstance(parent, exp.Query) else None
        if isinstance(with_, exp.With):
            names.update(_name(cte.args["alias"].this) if cte.args.get("alias") else cte.alias_or_name
                         for cte in with_.expressions)
        parent = parent.parent
    return names


def _function_name(fn: exp.Func) -> str:
    if isinstance(fn, exp.Anonymous):
        return str(fn.this).lower()
    return fn.sql_name().lower()


def _check_function(fn: exp.Func) -> None:
    name = _function_name(fn)
    if isinstance(fn.parent, exp.Dot) and fn.parent.expression is fn:
        raise Refused(f"Schema-qualified function calls ({fn.parent.sql(dialect='postgres')}) are not allowed.")
    if _DENY.match(name):
        raise Refused(f"The function {name}() is not allowed: charts may only read data, "
                      "not sleep, touch files, other databases, sessions or settings.")
    if isinstance(fn, exp.Anonymous) and name not in SAFE_ANONYMOUS:
        raise Refused(f"The function {name}() is not on the list of functions charts may use.")


def _check_table(table: exp.Table, schema: str, tables: frozenset[str]) -> str | None:
    """Check one table reference; returns the portal table it reads (None for a CTE or a table function)."""
    name, db, catalog = _name(table.this), _name(table.args.get("db")), _name(table.args.get("catalog"))
    if catalog:
        raise Refused(f"{table.sql(dialect='postgres')}: reading another database is not allowed.")
    if db and db != schema:
        raise Refused(f"{db}.{name}: only this portal's own tables can be read, not schema {db}.")
    if not isinstance(table.this, exp.Identifier):
        return None  # a table function such as generate_series(...): its function is checked on its own
    if not db and name in _visible_ctes(table):
        return None
    if name not in tables:
        hint = ", ".join(sorted(tables)[:12])
        raise Refused(f"Unknown table {name}: charts can read only this portal's tables ({hint}{', ...' if len(tables) > 12 else ''}).")
    table.set("db", exp.to_identifier(schema))
    return name


def _check_column(col: exp.Column, schema: str) -> None:
    db, catalog = _name(col.args.get("db")), _name(col.args.get("catalog"))
    if catalog or (db and db != schema):
        raise Refused(f"{col.sql(dialect='postgres')}: only this portal's own tables can be read.")


def _apply_limit(root: exp.Query, max_rows: int) -> int:
    """Cap the outer LIMIT at `max_rows`; returns the limit the caller shows (the SQL asks one row more)."""
    current = root.args.get("limit")
    wanted = max_rows
    if isinstance(current, exp.Limit) and isinstance(current.expression, exp.Literal) and current.expression.is_int:
        wanted = min(int(current.expression.name), max_rows)
    root.set("limit", exp.Limit(expression=exp.Literal.number(wanted + 1)))
    return wanted


def parse_one_statement(sql: str) -> exp.Expression:
    """Parse `sql` as exactly one PostgreSQL statement; raises Refused when it is empty, several or unparsable."""
    if not isinstance(sql, str) or not sql.strip():
        raise Refused("The query is empty.")
    if len(sql) > MAX_SQL_CHARS:
        raise Refused(f"The query is longer than {MAX_SQL_CHARS} characters.")
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0][:300] if str(exc) else "unparsable SQL"
        raise Refused(f"The query could not be parsed: {first}") from None
    if len(statements) != 1:
        raise Refused(f"Exactly one statement is allowed; this text has {len(statements)}.")
    return statements[0]


def check(sql: str, *, schema: str, tables: set[str] | frozenset[str], max_rows: int = DEFAULT_MAX_ROWS) -> Guarded:
    """Check `sql` for a portal whose mirror is `schema` with `tables`; return the query to run.

    Raises Refused (its message says why, in one sentence) for anything but one read-only SELECT over
    the portal's own tables with ordinary functions.
    """
    tables = frozenset(tables)
    root = parse_one_statement(sql)
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        kind = root.key.upper() if isinstance(root, exp.Expression) else "?"
        raise Refused(f"Only a SELECT query is allowed, not {kind}.")
    read: set[str] = set()
    for node in root.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            what = "SELECT INTO" if isinstance(node, exp.Into) else "FOR UPDATE/SHARE" if isinstance(node, exp.Lock) \
                else node.key.upper()
            raise Refused(f"{what} is not allowed: charts only read data.")
        if isinstance(node, exp.ObjectIdentifier) or (isinstance(node, exp.DataType) and "REG" in node.sql().upper()):
            raise Refused("Casts to catalog types (regclass, regproc, ...) are not allowed.")
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Table):
            name = _check_table(node, schema, tables)
            if name:
                read.add(name)
        elif isinstance(node, exp.Column):
            _check_column(node, schema)
    limit = _apply_limit(root, max_rows)
    return Guarded(sql=root.sql(dialect="postgres", comments=False), tables=frozenset(read), limit=limit)
