"""Field catalogues of CRM entities and the conversions between stored and wire values.

Records are stored with native Python values under a *key* (the camelCase name of `crm.item.*`,
or the original ``UF_...`` name of a custom field): ints, floats, ``Y``/``N`` strings, datetimes as
epoch seconds. `FieldSet` maps legacy UPPER names (`crm.deal.*`), camelCase names and the item-level
upper names (`upperName` in `crm.item.fields`) onto those keys, and renders values the way each API
family prints them (legacy: strings; `crm.item`: ints/floats).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

TZ = timezone(timedelta(hours=3))  # the portal's time zone (Moscow), as every date is printed with it
MULTI_TYPES = ("PHONE", "EMAIL", "WEB", "IM", "LINK")


@dataclass
class Field:
    key: str  # storage key (camelCase, or UF_... for custom fields)
    legacy: str | None  # UPPER name in crm.deal/lead/contact/company.*; None = item-only
    type: str
    title: str
    flags: str = ""  # R read-only, Q required, M multiple, I immutable, X not in '*', D deprecated
    status_type: str | None = None
    settings: dict | None = None
    upper: str = ""  # upperName in crm.item.fields
    uf: dict | None = None  # userfield definition for custom fields

    @property
    def multiple(self) -> bool:
        return "M" in self.flags

    def describe(self, with_upper: bool) -> dict:
        """The `*.fields` description of this field."""
        out: dict[str, Any] = {
            "type": self.type, "isRequired": "Q" in self.flags, "isReadOnly": "R" in self.flags,
            "isImmutable": "I" in self.flags, "isMultiple": self.multiple, "isDynamic": self.uf is not None,
            "title": self.title,
        }
        if "D" in self.flags:
            out["isDeprecated"] = True
        if self.status_type:
            out["statusType"] = self.status_type
        if self.settings:
            out["settings"] = self.settings
        if self.uf:
            out.update({"listLabel": self.title, "formLabel": self.title, "filterLabel": self.title})
            if self.uf.get("LIST"):
                out["items"] = [{"ID": e["ID"], "VALUE": e["VALUE"]} for e in self.uf["LIST"]]
        if with_upper:
            out["upperName"] = self.upper
        return out


def camel_to_upper(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).upper()


def uf_camel(name: str) -> str:
    """UF_CRM_1721244707107 -> ufCrm_1721244707107; UF_CRM_2_1639669411830 -> ufCrm2_1639669411830."""
    rest = name[len("UF_CRM_"):] if name.startswith("UF_CRM_") else name[3:]
    m = re.fullmatch(r"(\d+)_(\w+)", rest)
    if m:
        return f"ufCrm{m.group(1)}_{m.group(2)}"
    if rest.isdigit():
        return f"ufCrm_{rest}"
    return "ufCrm" + "".join(p.capitalize() for p in rest.split("_"))


class FieldSet:
    """The fields of one entity type with lookups by every name the API accepts."""

    def __init__(self, fields: list[Field]):
        self.fields: dict[str, Field] = {}
        self.by_legacy: dict[str, Field] = {}
        self.by_camel: dict[str, Field] = {}
        self.by_upper: dict[str, Field] = {}
        for f in fields:
            self.add(f)

    def add(self, f: Field) -> None:
        if not f.upper:
            f.upper = f.key if f.key.startswith("UF_") else camel_to_upper(f.key)
        self.fields[f.key] = f
        if f.legacy:
            self.by_legacy[f.legacy.upper()] = f
        camel = uf_camel(f.key) if f.uf else f.key
        self.by_camel[camel.lower()] = f
        self.by_upper[f.upper.upper()] = f

    def camel(self, f: Field, original_uf: bool = False) -> str:
        if f.uf:
            return f.key if original_uf else uf_camel(f.key)
        return f.key

    def resolve(self, name: str, legacy: bool) -> Field | None:
        """Find a field by a name from a request (legacy UPPER or camelCase/upperName)."""
        if legacy:
            return self.by_legacy.get(name.upper())
        return self.by_camel.get(name.lower()) or self.by_upper.get(name.upper())

    @property
    def user_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.uf]


# -- value conversion ---------------------------------------------------------------------------

def parse_time(value: Any) -> float | None:
    """Accept ISO 8601 (with or without offset), YYYY-MM-DD, DD.MM.YYYY[ HH:MM:SS] or epoch numbers."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=TZ).timestamp()
        except ValueError:
            pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"Invalid date value: {s}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=TZ)
    return dt.timestamp()


def fmt_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, TZ).isoformat(timespec="seconds")


def to_native(f: Field, value: Any) -> Any:
    """Convert an incoming value to its stored form. Raises ValueError for values of the wrong type."""
    if f.multiple and f.type != "crm_multifield":
        items = value if isinstance(value, list) else ([] if value in (None, "", False) else
                                                        list(value.values()) if isinstance(value, dict) else [value])
        return [_scalar(f, v) for v in items if v not in (None, "")]
    return _scalar(f, value)


def _scalar(f: Field, value: Any) -> Any:
    t = f.type
    if value is None:
        return None
    if isinstance(value, (dict, list)) and t not in ("file", "crm_multifield", "address"):
        raise ValueError(f"Field {f.legacy or f.key} expects a scalar value")
    if t in ("integer", "user", "employee", "crm_company", "crm_contact", "crm_lead", "crm_quote",
             "crm_category", "location"):
        if value == "" or value is False:
            return None if t != "crm_category" else 0
        return int(float(value))
    if t in ("double",):
        return None if value == "" else float(value)
    if t in ("char", "boolean"):
        if t == "boolean" and f.uf:
            return 1 if str(value).upper() in ("1", "Y", "TRUE") else 0
        return "Y" if str(value).upper() in ("Y", "1", "TRUE") else "N"
    if t in ("date", "datetime"):
        return parse_time(value)
    if t == "money" and value not in ("",):
        return str(value)
    if t == "enumeration":
        return None if value == "" else int(value)
    return value if isinstance(value, (dict, list)) else str(value)


def to_legacy(f: Field, v: Any) -> Any:
    """Render a stored value as the legacy methods print it (strings, like PHP)."""
    if f.multiple and f.type != "crm_multifield":
        return [_legacy_scalar(f, x) for x in (v or [])] if (v or not f.uf) else False
    return _legacy_scalar(f, v)


def _legacy_scalar(f: Field, v: Any) -> Any:
    if v is None:
        return None
    t = f.type
    if t in ("date", "datetime"):
        return fmt_time(v)
    if t == "double":
        return f"{v:.2f}" if not f.uf else str(v)
    if t == "boolean" and f.uf:
        return bool(v)
    if isinstance(v, (int, float)):
        return str(v)
    return v


def to_item(f: Field, v: Any) -> Any:
    """Render a stored value as `crm.item.*` prints it (numbers stay numbers)."""
    if f.multiple:
        return [_item_scalar(f, x) for x in (v or [])]
    return _item_scalar(f, v)


def _item_scalar(f: Field, v: Any) -> Any:
    if v is None:
        return 0 if f.type in ("crm_company", "crm_contact") and not f.uf else None
    t = f.type
    if t in ("date", "datetime"):
        return fmt_time(v)
    if t == "boolean" and f.uf:
        return "Y" if v else "N"
    if t == "double" and float(v).is_integer() and not f.uf:
        return int(v)
    if t == "enumeration" or (f.uf and t in ("integer", "employee")):
        return v if t != "integer" else v
    return v


@dataclass
class EntityKind:
    """Static facts about an entity type (lead, deal, contact, company or a smart process)."""

    entity_type_id: int
    name: str  # "deal", "lead", "contact", "company" or "item"
    uf_entity_id: str  # CRM_DEAL, CRM_5 ...
    fields: FieldSet
    item_extra: dict = field(default_factory=dict)  # crm.item-only keys with constant values
    title: str = ""
