"""The Markdown data dictionary of a portal's mirror (`GET /api/v1/schema.md`), and its compact form for the LLM.

`markdown(catalog)` lists every table and column with its Bitrix24 field, title and type, the values of
list fields, the stages of every pipeline, the other status lists and the relations between tables.
`markdown(catalog, compact=True, budget=...)` is the same text for the LLM, bounded for portals with
hundreds of fields: technical columns (raw JSON, files, sync stamps) and removed fields are dropped,
label columns are folded into their id column, list values are capped, empty columns go first when the
text must shrink, and the result never exceeds `budget` characters.
"""
from __future__ import annotations

import json

from flask import current_app
from sqlalchemy.engine import Connection

from . import catalog as catalog_mod
from .catalog import Catalog, ColumnInfo, TableInfo

COMPACT_BUDGET = 24_000  # characters (~6k tokens): room for the question, the answer and two corrections
CACHE_TTL = 3600

REFERENCE_NOTES = {
    "users": "id, name, last_name, full_name, email, active, position, departments bigint[] (→ departments.id), is_admin",
    "departments": "id, name, parent (→ departments.id), sort, head (→ users.id)",
    "categories": "pipelines: entity_type_id (2 = deals, ≥128 smart processes), id, name, sort, is_default",
    "statuses": "entity_id, status_id, name, sort, category_id, semantics ('S' success, 'F' failure, else in progress), "
                "color, family (entity_id without the pipeline number, e.g. DEAL_STAGE)",
    "item_contacts": "table_name ('deals', 'leads', 'sp_<id>'), entity_id (→ that table's id), contact_id (→ contacts.id)",
    "multifields": "table_name ('contacts', 'companies', 'leads'), entity_id (→ that table's id), "
                   "type_id (PHONE, EMAIL, WEB, IM), value_type (WORK, MOBILE, ...), value",
    "enum_items": "table_name, column_name, item_id, value: the values of list (enumeration) fields",
    "fields": "table_name, column_name, b24_field, title, b24_type, pg_type, is_multiple, status_type, label_of, removed",
    "entities": "table_name, entity, entity_type_id, title, schema_version",
}
CORE = {"id", "title", "stage_id", "category_id", "opportunity", "assigned_by_id", "created_time", "closedate"}
SEMANTICS = {"S": "won/success", "F": "lost/failure"}


def _esc(value: object) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _notes(col: ColumnInfo, catalog: Catalog, *, enum_cap: int | None) -> str:
    if col.label_of:
        return f"readable name of {col.label_of}"
    parts: list[str] = []
    if col.name == "id":
        parts.append("primary key")
    if col.refers:
        parts.append(f"→ {col.refers}" + (" (each element)" if col.is_multiple else ""))
    if col.status_type:
        family = col.status_type
        if family in catalog.pipelines:
            parts.append(f"stage id → statuses.status_id (family {family}); stages listed below")
        elif family in catalog.lists:
            values = catalog.lists[family]
            shown = values if enum_cap is None else values[:enum_cap]
            more = f", … (+{len(values) - len(shown)} more)" if len(shown) < len(values) else ""
            parts.append(f"list {family}: " + ", ".join(f"{i} = {n}" for i, n in shown) + more)
    if col.enum and col.label_of is None:
        shown = col.enum if enum_cap is None else col.enum[:enum_cap]
        more = f", … (+{len(col.enum) - len(shown)} more)" if len(shown) < len(col.enum) else ""
        parts.append("values: " + ", ".join(f"{i} = {v}" for i, v in shown) + more)
    if col.label_column:
        parts.append(f"readable name in {col.label_column}")
    if col.b24_type == "money" and not col.name.endswith("_currency"):
        parts.append(f"amount; currency in {col.name}_currency")
    if col.b24_type == "crm":
        parts.append("CRM bindings like D_12 (deal), C_3 (contact), CO_5 (company)")
    if col.removed:
        parts.append("removed from Bitrix24; old data kept")
    if col.is_multiple and col.pg_type.endswith("[]"):
        parts.append("array: use unnest() or = ANY()")
    if col.fill is not None and col.fill == 0:
        parts.append("always empty")
    return "; ".join(parts)


def _stages(catalog: Catalog, *, cap: int | None) -> list[str]:
    out: list[str] = []
    for family, pipes in catalog.pipelines.items():
        out.append(f"### Stages: {family}")
        for cat, name, stages in pipes:
            shown = stages if cap is None else stages[:cap]
            items = ", ".join(f"`{s.status_id}` {s.name}" + (f" ({SEMANTICS[s.semantics]})" if s.semantics in SEMANTICS else "")
                              for s in shown)
            more = f", … (+{len(stages) - len(shown)} more)" if len(shown) < len(stages) else ""
            label = f"pipeline {cat} “{name}”" if cat is not None else name
            out.append(f"- {label} (category_id = {cat}): {items}{more}" if cat is not None else f"- {label}: {items}{more}")
        out.append("")
    return out


def _relations(catalog: Catalog) -> list[str]:
    lines = ["## Relations", ""]
    for t in catalog.entity_tables:
        for c in t.columns:
            if c.refers and not c.removed:
                lines.append(f"- {t.name}.{c.name}{'[]' if c.is_multiple else ''} → {c.refers}")
            elif c.status_type and c.label_of is None and not c.removed:
                lines.append(f"- {t.name}.{c.name} → statuses.status_id where statuses.family = '{c.status_type}'")
    lines += [
        "- item_contacts (table_name, entity_id) → that table's id; item_contacts.contact_id → contacts.id",
        "- multifields (table_name, entity_id) → contacts.id / companies.id / leads.id (phones, e-mails, ...)",
        "- categories (entity_type_id, id): deals.category_id → categories.id with categories.entity_type_id = 2",
        "- users.departments[] → departments.id; departments.parent → departments.id; departments.head → users.id",
        "- enum_items (table_name, column_name, item_id) → the value of a list field",
        "",
    ]
    return lines


def _keep(t: TableInfo, min_fill: float, max_cols: int) -> set[str]:
    """Columns the compact form keeps: core ones, then the best-filled, at most `max_cols`."""
    usable = [c for c in t.columns if not (c.technical or c.removed or c.label_of
                                           or (c.name.endswith("_currency") and c.b24_type == "money"))]
    core = [c.name for c in usable if c.name in CORE]
    rest = [c for c in usable if c.name not in CORE and (c.fill is None or c.fill >= min_fill)]
    rest.sort(key=lambda c: -(c.fill if c.fill is not None else 1.0))
    return set(core) | {c.name for c in rest[:max(0, max_cols - len(core))]}


def _table_block(t: TableInfo, catalog: Catalog, *, compact: bool, enum_cap: int | None, min_fill: float,
                 max_cols: int = 10_000) -> list[str]:
    head = f"## {t.name} — {t.title}" + (f" (entity type {t.entity_type_id})" if t.entity_type_id else "")
    out = [head, "", f"{t.rows} rows.", ""]
    if t.kind == "reference" and compact:
        return [f"## {t.name} — {t.title}", "", f"{t.rows} rows. Columns: {REFERENCE_NOTES.get(t.name, ', '.join(c.name for c in t.columns))}", ""]
    if compact:
        out += ["| column | title | type | notes |", "| --- | --- | --- | --- |"]
    else:
        out += ["| column | Bitrix24 field | title | type | notes |", "| --- | --- | --- | --- | --- |"]
    keep = _keep(t, min_fill, max_cols) if compact else set()
    for c in t.columns:
        if compact and c.name not in keep:
            continue
        notes = _notes(c, catalog, enum_cap=enum_cap)
        if compact:
            out.append(f"| {c.name} | {_esc(c.title)} | {c.pg_type} | {_esc(notes)} |")
        else:
            out.append(f"| {c.name} | {_esc(c.b24_field or '')} | {_esc(c.title)} | {c.pg_type} | {_esc(notes)} |")
    out.append("")
    return out


def _preamble(catalog: Catalog, compact: bool) -> list[str]:
    lines = [f"# Data dictionary of {catalog.schema}", "",
             "A read-only PostgreSQL copy of this Bitrix24 portal's CRM. Query the tables by their plain names "
             "(`deals`, not `schema.deals`). Columns ending in `_label` hold the readable name of the id beside them "
             "(stage, pipeline, source, list value): group and filter by them. Dates are `date`, times `timestamptz`.",
             f"Schema version `{catalog.version}`.", ""]
    if not compact:
        lines += ["| table | what | rows |", "| --- | --- | --- |"]
        lines += [f"| {t.name} | {_esc(t.title)} | {t.rows} |" for t in catalog.tables]
        lines.append("")
    return lines


def _render(catalog: Catalog, *, compact: bool, enum_cap: int | None, stage_cap: int | None, min_fill: float,
            max_cols: int = 10_000, tables: list[TableInfo] | None = None) -> str:
    lines = _preamble(catalog, compact)
    for t in tables if tables is not None else catalog.tables:
        lines += _table_block(t, catalog, compact=compact, enum_cap=enum_cap, min_fill=min_fill, max_cols=max_cols)
    lines += _stages(catalog, cap=stage_cap)
    lines += _relations(catalog)
    return "\n".join(lines)


def markdown(catalog: Catalog, *, compact: bool = False, budget: int = COMPACT_BUDGET) -> str:
    """The dictionary as Markdown: everything (default), or the compact LLM form no longer than `budget` chars."""
    if not catalog.tables:
        return (f"# Data dictionary of {catalog.schema}\n\nNothing is mirrored yet: run a sync of this portal's CRM "
                "first (Settings → Sync, or `POST /api/v1/sync/start/all`).\n")
    if not compact:
        return _render(catalog, compact=False, enum_cap=None, stage_cap=None, min_fill=0.0)
    # Shrink step by step until it fits: empty columns, then sparse ones, shorter lists, fewer columns, fewer tables.
    steps = [(12, 40, 1e-9, 400), (8, 30, 0.01, 200), (5, 20, 0.05, 120), (3, 12, 0.2, 60), (3, 12, 0.2, 30)]
    text = ""
    for enum_cap, stage_cap, min_fill, max_cols in steps:
        text = _render(catalog, compact=True, enum_cap=enum_cap, stage_cap=stage_cap, min_fill=min_fill, max_cols=max_cols)
        if len(text) <= budget:
            return text
    ranked = sorted(catalog.entity_tables, key=lambda t: (t.name not in ("deals", "leads", "contacts", "companies"), -t.rows))
    refs = [t for t in catalog.tables if t.kind == "reference"]
    while len(ranked) > 1:
        ranked.pop()
        text = _render(catalog, compact=True, enum_cap=3, stage_cap=12, min_fill=0.2, max_cols=30, tables=[*ranked, *refs])
        if len(text) <= budget:
            return text + "\n(Some tables are left out for size; see /api/v1/schema.md.)\n"
    return text[:budget - 60] + "\n… (cut for size; see /api/v1/schema.md)\n"


def for_portal(conn: Connection, portal_id: int, *, compact: bool = False) -> tuple[str, str]:
    """(markdown, schema version) for a portal, cached in Redis by version for an hour."""
    version = catalog_mod.version(conn, portal_id)
    redis = current_app.extensions["redis"]
    key = f"hub24:charts:dict:{portal_id}:{version}:{'c' if compact else 'f'}"
    cached = redis.get(key)
    if cached is not None:
        return cached.decode(), version
    cat = catalog_mod.load(conn, portal_id)
    text = markdown(cat, compact=compact)
    redis.set(key, text.encode(), ex=CACHE_TTL)
    return text, cat.version


def fields_json(cat: Catalog) -> dict:
    """The builder's view of the mirror: entity tables with their columns (for the chart builder UI)."""
    out = []
    for t in cat.entity_tables:
        cols = [{"name": c.name, "title": c.title, "type": c.pg_type, "b24_type": c.b24_type, "label": c.label_column,
                 "values": [{"id": i, "value": v} for i, v in c.enum] or None}
                for c in t.columns if not c.technical and not c.removed and not c.label_of]
        out.append({"table": t.name, "title": t.title, "rows": t.rows, "columns": cols})
    return json.loads(json.dumps({"entities": out, "version": cat.version}))
