"""Bitrix24 field metadata -> PostgreSQL columns.

Every field of `crm.item.fields` becomes one typed column named in snake_case (`stageId` -> `stage_id`,
`UF_CRM_1721244206` -> `uf_crm_1721244206`) with the Bitrix24 title as its comment. Fields whose values
are ids of a list get a label column beside them (`stage_id` + `stage_id_label`), filled from the stage
and status lists or the field's enumeration items, so a query never has to decode numeric ids.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

# Bitrix24 field type -> (PostgreSQL type, kind). `kind` tells transform.py how to convert a value.
TYPE_MAP: dict[str, tuple[str, str]] = {
    "integer": ("bigint", "int"),
    "double": ("numeric", "num"),
    "string": ("text", "text"),
    "char": ("boolean", "yn"),  # Y/N flags
    "boolean": ("boolean", "yn"),
    "date": ("date", "date"),
    "datetime": ("timestamptz", "datetime"),
    "crm_status": ("text", "status"),
    "crm_category": ("bigint", "category"),
    "crm_currency": ("text", "text"),
    "user": ("bigint", "int"),
    "employee": ("bigint", "int"),
    "crm_lead": ("bigint", "int"),
    "crm_deal": ("bigint", "int"),
    "crm_contact": ("bigint", "int"),
    "crm_company": ("bigint", "int"),
    "crm_quote": ("bigint", "int"),
    "crm_entity": ("bigint", "int"),
    "enumeration": ("bigint", "enum"),
    "money": ("numeric", "money"),  # "2000|RUB": amount here, currency in <col>_currency
    "url": ("text", "text"),
    "address": ("text", "text"),
    "location": ("text", "text"),
    "crm": ("text", "text"),  # bindings like "D_1", "C_2", "T80_6"
    "iblock_section": ("bigint", "int"),
    "iblock_element": ("bigint", "int"),
    "file": ("jsonb", "json"),
    "crm_multifield": ("jsonb", "json"),
}
ARRAY_OK = {"bigint", "text", "numeric", "date", "timestamptz", "boolean"}
RESERVED = {"id", "raw", "synced_at"}


@dataclass(frozen=True)
class Column:
    """One column of an entity table."""

    name: str  # PostgreSQL column name
    pg_type: str  # e.g. bigint, text[], timestamptz
    kind: str  # conversion kind for transform.py
    source: str | None  # key in the Bitrix24 record; None for derived columns
    title: str = ""
    field_type: str = ""  # Bitrix24 type
    multiple: bool = False
    status_type: str | None = None  # crm_status lists (DEAL_STAGE, SOURCE, ...)
    label_of: str | None = None  # for label columns: the id column they describe
    enum_items: tuple[tuple[int, str], ...] = ()


def snake(name: str) -> str:
    """stageId -> stage_id; UF_CRM_12_34 -> uf_crm_12_34; parentId1032 -> parent_id_1032."""
    if name.isupper() or "_" in name and name.upper() == name:
        out = name.lower()
    else:
        out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
        out = re.sub(r"(?<=[a-zA-Z])(\d+)$", r"_\1", out).lower()
    out = re.sub(r"[^a-z0-9_]", "_", out)
    return out if not out[0].isdigit() else f"f_{out}"


def columns_for(fields: dict[str, dict], stage_status_type: str | None = None) -> list[Column]:
    """Columns for `crm.item.fields` metadata (`useOriginalUfNames=Y`), in field order.

    `stage_status_type` names the status list of the entity's stage field when the metadata does not
    carry one (smart processes: stages depend on the category).
    """
    cols: list[Column] = []
    seen: set[str] = set()
    for key, meta in fields.items():
        if key == "id" or meta.get("type") == "crm_multifield":
            continue
        name = snake(key)
        if name in RESERVED or name in seen:
            name = f"f_{name}"
        seen.add(name)
        ftype = meta.get("type", "string")
        pg, kind = TYPE_MAP.get(ftype, ("text", "text"))
        multiple = bool(meta.get("isMultiple"))
        title = meta.get("listLabel") or meta.get("formLabel") or meta.get("title") or key
        status_type = meta.get("statusType") or (meta.get("settings") or {}).get("ENTITY_TYPE")
        if key == "stageId" and not status_type:
            status_type = stage_status_type
        items = tuple((int(i["ID"]), str(i["VALUE"])) for i in meta.get("items") or [] if str(i.get("ID", "")).isdigit())
        if multiple:
            pg = f"{pg}[]" if pg in ARRAY_OK else "jsonb"
        cols.append(Column(name, pg, kind, key, title, ftype, multiple, status_type, None, items))
        if kind in ("status", "category", "enum"):
            label_type = "text[]" if multiple else "text"
            cols.append(Column(f"{name}_label", label_type, "label", None, f"{title} (label)", ftype, multiple,
                               status_type, name, items))
        if kind == "money":
            cols.append(Column(f"{name}_currency", "text[]" if multiple else "text", "money_currency", key,
                               f"{title} (currency)", ftype, multiple))
    return cols


def schema_version(columns: list[Column]) -> str:
    """A short hash of the column layout and labels: changes whenever the table must change."""
    payload = [(c.name, c.pg_type, c.title, c.enum_items) for c in columns]
    return hashlib.sha1(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:12]
