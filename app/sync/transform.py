"""A Bitrix24 record -> a row of typed column values.

Values arrive as Bitrix24 prints them (`crm.item.*` gives ints and floats, legacy methods strings, dates
as ISO 8601 with offset, flags as Y/N, money as "amount|CURRENCY"). Conversion is forgiving about form and
strict about meaning: a value that cannot be read as its type becomes NULL in the typed column, and the
untouched record is always kept in `raw`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable

from .columns import Column


@dataclass
class Labels:
    """Id -> label lookups used to fill label columns."""

    statuses: dict[str, dict[str, str]] = field(default_factory=dict)  # status family -> {STATUS_ID: NAME}
    categories: dict[int, str] = field(default_factory=dict)  # category id -> name (for this entity type)

    def status(self, status_type: str | None, value: str) -> str | None:
        if not status_type:
            return None
        family = self.statuses.get(status_family(status_type))
        return family.get(value) if family else None


def status_family(status_type: str) -> str:
    """DEAL_STAGE_3 -> DEAL_STAGE; DYNAMIC_128_STAGE_5 -> DYNAMIC_128_STAGE; SOURCE -> SOURCE."""
    return re.sub(r"_\d+$", "", status_type) if re.search(r"STAGE_\d+$", status_type) else status_type


def _int(v: Any) -> int | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return None


def _num(v: Any) -> Decimal | None:
    if v is None or v == "":
        return None
    try:
        return Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None


def _yn(v: Any) -> bool | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().upper()
    if s in ("Y", "1", "TRUE"):
        return True
    if s in ("N", "0", "FALSE"):
        return False
    return None


def _datetime(v: Any) -> datetime | None:
    if not v:
        return None
    try:
        return datetime.fromisoformat(str(v))
    except ValueError:
        return None


def _date(v: Any) -> date | None:
    dt = _datetime(v)
    if dt is not None:
        return dt.date()
    try:
        return date.fromisoformat(str(v)[:10]) if v else None
    except ValueError:
        return None


def _money(v: Any) -> tuple[Decimal | None, str | None]:
    if v is None or v == "" or isinstance(v, (list, dict)):
        return None, None
    amount, _, currency = str(v).partition("|")
    return _num(amount), (currency or None)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


SCALAR: dict[str, Callable[[Any], Any]] = {
    "int": _int, "num": _num, "yn": _yn, "date": _date, "datetime": _datetime, "text": _text,
    "status": _text, "category": _int, "enum": _int,
}


def _many(v: Any) -> list:
    if v is None or v == "" or v is False:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def convert(col: Column, record: dict, row: dict, labels: Labels) -> Any:
    """The value of `col` for `record`; `row` holds the columns converted so far (label columns read it)."""
    if col.kind == "label":
        ids = row.get(col.label_of)
        lookup = _label_lookup(col, labels)
        if col.multiple:
            return [lookup(i) for i in (ids or [])]
        return lookup(ids) if ids is not None else None
    raw = record.get(col.source) if col.source else None
    if col.kind in ("money", "money_currency"):
        pick = 0 if col.kind == "money" else 1
        if col.multiple:
            return [_money(x)[pick] for x in _many(raw)]
        return _money(raw)[pick]
    if col.kind == "json" or col.pg_type == "jsonb":
        return raw  # nested JSON as is; load.py serialises the row once
    fn = SCALAR.get(col.kind, _text)
    if col.multiple:
        return [fn(x) for x in _many(raw)]
    if isinstance(raw, (list, dict)):  # a structure where a single value belongs: kept as JSON text, not a value
        return _text(raw) if col.kind in ("text", "status") else None
    return fn(raw)


def _label_lookup(col: Column, labels: Labels) -> Callable[[Any], str | None]:
    if col.field_type == "enumeration":
        items = dict(col.enum_items)
        return lambda i: items.get(int(i)) if i is not None else None
    if col.field_type == "crm_category":
        return lambda i: labels.categories.get(int(i)) if i is not None else None
    return lambda i: labels.status(col.status_type, str(i)) if i is not None else None


def to_row(record: dict, columns: Iterable[Column], labels: Labels) -> dict[str, Any]:
    """Convert one record; the result has `id`, every column, and `raw`."""
    row: dict[str, Any] = {"id": _int(record.get("id", record.get("ID")))}
    for col in columns:
        row[col.name] = convert(col, record, row, labels)
    row["raw"] = record
    return row


def multifields(record: dict) -> list[tuple[str, str, str, str]]:
    """(type, value_type, value, item id) for every phone, e-mail, web and messenger value of a record.

    Accepts `crm.item` (`fm: [{id, typeId, valueType, value}]`) and legacy (`PHONE: [{ID, VALUE_TYPE, VALUE}]`) shapes.
    """
    out: list[tuple[str, str, str, str]] = []
    for fm in record.get("fm") or []:
        out.append((str(fm.get("typeId", "")), str(fm.get("valueType", "")), str(fm.get("value", "")), str(fm.get("id", ""))))
    if not out:
        for kind in ("PHONE", "EMAIL", "WEB", "IM", "LINK"):
            for fm in record.get(kind) or []:
                out.append((kind, str(fm.get("VALUE_TYPE", "")), str(fm.get("VALUE", "")), str(fm.get("ID", ""))))
    return [m for m in out if m[2]]
