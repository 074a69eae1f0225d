"""What a portal's mirror holds, read once from its reference tables: tables, columns, lists, stages.

The data dictionary (`dictionary.py`), the manual builder (`builder.py`) and the AI cache key all read
this one `Catalog`. `version()` is a short hash that changes whenever a column, a title, a stage, a
pipeline or a list value changes, so anything cached by it is dropped when the mirror's shape changes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..sync.schema import ident, schema_name

# Bitrix24 field types whose values are ids of rows in another mirrored table.
REFERS: dict[str, str] = {
    "crm_company": "companies.id", "crm_contact": "contacts.id", "crm_lead": "leads.id", "crm_deal": "deals.id",
    "user": "users.id", "employee": "users.id", "crm_category": "categories.id",
}
TECHNICAL = {"raw", "synced_at"}
SAMPLE_ROWS = 20_000  # column fill is measured on at most this many rows


@dataclass
class ColumnInfo:
    """One column of a mirrored table as the dictionary and the builder describe it."""

    name: str
    pg_type: str
    title: str = ""
    b24_field: str | None = None
    b24_type: str | None = None
    is_multiple: bool = False
    status_type: str | None = None
    label_of: str | None = None
    removed: bool = False
    enum: list[tuple[int, str]] = field(default_factory=list)
    label_column: str | None = None  # the *_label column beside this id column
    refers: str | None = None  # e.g. "companies.id"
    fill: float | None = None  # share of sampled rows where it is not null

    @property
    def technical(self) -> bool:
        return self.name in TECHNICAL or self.pg_type == "jsonb"


@dataclass
class TableInfo:
    """One table of the mirror: an entity table (deals, sp_128, ...) or a reference table (users, ...)."""

    name: str
    title: str
    kind: str  # "entity" or "reference"
    entity_type_id: int | None = None
    rows: int = 0
    columns: list[ColumnInfo] = field(default_factory=list)

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class Stage:
    status_id: str
    name: str
    semantics: str | None  # S success, F failure, otherwise in progress


@dataclass
class Catalog:
    """A portal's mirror: tables, stage lists per pipeline, other status lists, and its version."""

    portal_id: int
    schema: str
    tables: list[TableInfo]
    pipelines: dict[str, list[tuple[int | None, str, list[Stage]]]]  # family -> [(category id, name, stages)]
    lists: dict[str, list[tuple[str, str]]]  # status list (SOURCE, DEAL_TYPE, ...) -> [(id, name)]
    version: str

    def table(self, name: str) -> TableInfo | None:
        return next((t for t in self.tables if t.name == name), None)

    @property
    def entity_tables(self) -> list[TableInfo]:
        return [t for t in self.tables if t.kind == "entity"]


def _exists(conn: Connection, schema: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar())


def version(conn: Connection, portal_id: int) -> str:
    """A 12-character hash of the mirror's shape and labels ("none" when there is no mirror yet)."""
    schema = schema_name(portal_id)
    if not _exists(conn, schema):
        return "none"
    s = ident(schema)
    digest = conn.execute(text(
        f"SELECT md5(coalesce((SELECT string_agg(table_name || ':' || schema_version, ',' ORDER BY table_name) FROM {s}.entities), '')"
        f" || '|' || coalesce((SELECT string_agg(entity_id || '/' || status_id || '=' || name, ',' ORDER BY entity_id, status_id) FROM {s}.statuses), '')"
        f" || '|' || coalesce((SELECT string_agg(entity_type_id || '/' || id || '=' || name, ',' ORDER BY entity_type_id, id) FROM {s}.categories), ''))"
    )).scalar()
    return digest[:12]


def _reference_columns(conn: Connection, schema: str, table: str) -> list[ColumnInfo]:
    rows = conn.execute(text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relname = :t AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"),
        {"s": schema, "t": table})
    return [ColumnInfo(name, typ, title=comment or "") for name, typ, comment in rows]


def _fill(conn: Connection, schema: str, table: TableInfo) -> None:
    """Measure how many sampled rows have a value in each column (one scan of at most SAMPLE_ROWS rows)."""
    cols = [c for c in table.columns if c.name not in TECHNICAL]
    if not cols or table.rows == 0:
        for c in cols:
            c.fill = 0.0
        return
    s, t = ident(schema), ident(table.name)
    exprs = ", ".join(f"count({ident(c.name)})" for c in cols)
    counts = conn.execute(text(f"SELECT count(*), {exprs} FROM (SELECT * FROM {s}.{t} LIMIT {SAMPLE_ROWS}) q")).one()
    total = counts[0] or 1
    for c, n in zip(cols, counts[1:]):
        c.fill = n / total


def load(conn: Connection, portal_id: int, *, measure_fill: bool = True) -> Catalog:
    """Read the portal's mirror into a Catalog (empty when never synced). Raises nothing for a missing mirror."""
    schema = schema_name(portal_id)
    if not _exists(conn, schema):
        return Catalog(portal_id, schema, [], {}, {}, "none")
    s = ident(schema)
    tables: list[TableInfo] = []
    entity_rows = conn.execute(text(f"SELECT table_name, title, entity_type_id FROM {s}.entities ORDER BY entity_type_id = 2 DESC, "
                                    "entity_type_id")).all()
    enum_items: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for t, c, i, v in conn.execute(text(f"SELECT table_name, column_name, item_id, value FROM {s}.enum_items ORDER BY 1, 2, 3")):
        enum_items.setdefault((t, c), []).append((int(i), v))
    fields: dict[str, list[ColumnInfo]] = {}
    for r in conn.execute(text(f"SELECT table_name, column_name, b24_field, title, b24_type, pg_type, is_multiple, status_type, "
                               f"label_of, removed FROM {s}.fields")).mappings():
        col = ColumnInfo(r["column_name"], r["pg_type"], r["title"], r["b24_field"], r["b24_type"], r["is_multiple"],
                         r["status_type"], r["label_of"], r["removed"], enum_items.get((r["table_name"], r["column_name"]), []))
        if col.label_of is None and col.b24_type in REFERS:
            col.refers = REFERS[col.b24_type]
        fields.setdefault(r["table_name"], []).append(col)
    counts = {}
    for name, _, _ in entity_rows:
        counts[name] = conn.execute(text(f"SELECT count(*) FROM {s}.{ident(name)}")).scalar() or 0
    for name, title, etid in entity_rows:
        physical = {c.name: c for c in _reference_columns(conn, schema, name)}
        if not physical:
            continue
        described = {c.name: c for c in fields.get(name, [])}
        cols: list[ColumnInfo] = []
        for cname, pc in physical.items():  # physical order, titles from `fields`
            col = described.get(cname) or ColumnInfo(cname, pc.pg_type, title={"id": "ID", "raw": "The record as Bitrix24 sent it",
                                                                                  "synced_at": "When Hub24 last wrote this row"}.get(cname, cname))
            col.pg_type = pc.pg_type if not described.get(cname) else col.pg_type
            cols.append(col)
        for col in cols:
            if col.label_of and (base := next((c for c in cols if c.name == col.label_of), None)):
                base.label_column = col.name
        table = TableInfo(name, title, "entity", int(etid), counts.get(name, 0), cols)
        if measure_fill:
            _fill(conn, schema, table)
        tables.append(table)
    comments = dict(conn.execute(text(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind = 'r'"), {"s": schema}).all())
    for ref in ("users", "departments", "categories", "statuses", "item_contacts", "multifields", "enum_items", "fields", "entities"):
        if ref in comments:
            rows = conn.execute(text(f"SELECT count(*) FROM {s}.{ident(ref)}")).scalar() or 0
            tables.append(TableInfo(ref, comments[ref] or ref, "reference", None, rows, _reference_columns(conn, schema, ref)))
    cat_names = {(int(et), int(i)): (n, bool(d)) for et, i, n, d in
                 conn.execute(text(f"SELECT entity_type_id, id, name, is_default FROM {s}.categories"))}
    pipelines: dict[str, list[tuple[int | None, str, list[Stage]]]] = {}
    lists: dict[str, list[tuple[str, str]]] = {}
    by_entity: dict[tuple[str, str, int | None], list[Stage]] = {}
    for entity_id, family, status_id, name, cat, sem in conn.execute(text(
            f"SELECT entity_id, family, status_id, name, category_id, semantics FROM {s}.statuses ORDER BY entity_id, sort, status_id")):
        if family.endswith("STAGE") or family == "STATUS":
            by_entity.setdefault((family, entity_id, cat), []).append(Stage(status_id, name, sem))
        else:
            lists.setdefault(entity_id, []).append((status_id, name))
    for (family, entity_id, cat), stages in sorted(by_entity.items(), key=lambda kv: (kv[0][0], kv[0][2] or 0)):
        etid = 2 if family == "DEAL_STAGE" else int(family.split("_")[1]) if family.startswith("DYNAMIC_") else None
        name = cat_names.get((etid, cat), (None, False))[0] if etid is not None and cat is not None else None
        pipelines.setdefault(family, []).append((cat, name or ("Leads" if family == "STATUS" else f"Pipeline {cat}"), stages))
    return Catalog(portal_id, schema, tables, pipelines, lists, version(conn, portal_id))
