"""A portal's CRM: entity tables, smart-process types, stages, pipelines, custom fields, users.

Every change goes through `CrmState.add/update/delete`, which publish ``crm.changed`` on the portal
bus (S2's lifecycle code turns that into events, offline events and robot runs).
"""
from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from ..core import PortalState
from .catalog import build_kind
from .fields import EntityKind, Field, MULTI_TYPES, to_item, to_legacy, to_native
from .store import EntityStore

UF_SETTINGS = {  # default SETTINGS per USER_TYPE_ID, as crm.*.userfield.list prints them
    "string": {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": ""},
    "enumeration": {"DISPLAY": "LIST", "LIST_HEIGHT": 1, "CAPTION_NO_VALUE": "", "SHOW_NO_VALUE": "Y"},
    "file": {"SIZE": 20, "LIST_WIDTH": 0, "LIST_HEIGHT": 0, "MAX_SHOW_SIZE": 0, "MAX_ALLOWED_SIZE": 0,
             "EXTENSIONS": [], "TARGET_BLANK": "Y"},
    "integer": {"SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "double": {"PRECISION": 2, "SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "boolean": {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""},
    "date": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}},
    "datetime": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}, "USE_SECOND": "Y", "USE_TIMEZONE": "N"},
    "money": {"DEFAULT_VALUE": ""},
    "url": {"POPUP": "Y", "SIZE": 20, "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": "", "ROWS": 1},
    "address": {"SHOW_MAP": "Y"},
    "employee": {},
    "crm": {"LEAD": "N", "CONTACT": "Y", "COMPANY": "Y", "DEAL": "Y"},
}
LEGACY = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
ENTITY_BY_NAME = {v: k for k, v in LEGACY.items()}


class CrmError(ValueError):
    """A CRM operation failed: unknown record, bad field value. `status`/`code` as Bitrix24 answers."""

    def __init__(self, description: str, code: str = "", status: int = 400):
        super().__init__(description)
        self.description, self.code, self.status = description, code, status


class CrmState:
    """The CRM of one portal."""

    def __init__(self, portal: PortalState):
        self.portal = portal
        self._fm_ids = itertools.count(1)
        self._uf_ids = itertools.count(100)
        self.kinds: dict[int, EntityKind] = {}
        self.stores: dict[int, EntityStore] = {}
        self.types: dict[int, dict] = {}  # smart processes: entityTypeId -> crm.type record
        self.statuses: list[dict] = []
        self.categories: dict[int, list[dict]] = {}  # entityTypeId -> categories
        self.users: dict[int, dict] = {}
        self.departments: dict[int, dict] = {}
        for etid, name in LEGACY.items():
            self._register(build_kind(name, etid, f"CRM_{name.upper()}"))

    def _register(self, kind: EntityKind) -> None:
        self.kinds[kind.entity_type_id] = kind
        self.stores[kind.entity_type_id] = EntityStore(kind, lambda: next(self._fm_ids))

    # -- structure ----------------------------------------------------------------------------
    def add_type(self, entity_type_id: int, title: str, type_id: int) -> EntityKind:
        """Register a smart process (crm.type) with its default pipeline."""
        kind = build_kind("item", entity_type_id, f"CRM_{type_id}", title)
        self._register(kind)
        now = _iso_now()
        self.types[entity_type_id] = {
            "id": type_id, "title": title, "code": "", "createdBy": 1, "entityTypeId": entity_type_id,
            "customSectionId": None, "isCategoriesEnabled": "Y", "isStagesEnabled": "Y",
            "isBeginCloseDatesEnabled": "Y", "isClientEnabled": "Y", "isUseInUserfieldEnabled": "Y",
            "isLinkWithProductsEnabled": "Y", "isMycompanyEnabled": "Y", "isDocumentsEnabled": "Y",
            "isSourceEnabled": "Y", "isObserversEnabled": "Y", "isRecyclebinEnabled": "Y",
            "isAutomationEnabled": "Y", "isBizProcEnabled": "Y", "isSetOpenPermissions": "Y",
            "isPaymentsEnabled": "N", "isCountersEnabled": "N", "createdTime": now, "updatedTime": now,
            "updatedBy": 1,
        }
        return kind

    def kind(self, entity_type_id: int) -> EntityKind | None:
        return self.kinds.get(entity_type_id)

    def add_user_field(self, entity_type_id: int, field_name: str, user_type_id: str, label: str,
                       multiple: bool = False, settings: dict | None = None,
                       enum: list[str] | None = None) -> Field:
        """Create a custom field (``UF_CRM_...``) of a documented USER_TYPE_ID."""
        kind = self.kinds[entity_type_id]
        uf = {
            "ID": str(next(self._uf_ids)), "ENTITY_ID": kind.uf_entity_id, "FIELD_NAME": field_name,
            "USER_TYPE_ID": user_type_id, "XML_ID": None, "SORT": "100", "MULTIPLE": "Y" if multiple else "N",
            "MANDATORY": "N", "SHOW_FILTER": "E", "SHOW_IN_LIST": "Y", "EDIT_IN_LIST": "Y",
            "IS_SEARCHABLE": "N", "SETTINGS": {**UF_SETTINGS.get(user_type_id, {}), **(settings or {})}, "EDIT_FORM_LABEL": label,
            "LIST_COLUMN_LABEL": label, "LIST_FILTER_LABEL": label, "ERROR_MESSAGE": None, "HELP_MESSAGE": None,
        }
        if enum:
            uf["LIST"] = [{"ID": str(next(self._uf_ids)), "SORT": str(10 * (i + 1)), "VALUE": v,
                           "DEF": "N", "XML_ID": f"{field_name.lower()}_{i}"} for i, v in enumerate(enum)]
        ftype = {"integer": "integer", "double": "double", "boolean": "boolean", "date": "date",
                 "datetime": "datetime", "enumeration": "enumeration", "employee": "employee",
                 "money": "money", "file": "file", "address": "address"}.get(user_type_id, user_type_id)
        f = Field(key=field_name, legacy=field_name, type=ftype, title=label, flags="M" if multiple else "",
                  uf=uf, settings=settings or None)
        kind.fields.add(f)
        return f

    # -- records ------------------------------------------------------------------------------
    def store(self, entity_type_id: int) -> EntityStore:
        s = self.stores.get(entity_type_id)
        if s is None:
            raise CrmError("Smart process not found", "NOT_FOUND")
        return s

    def stages(self, entity_type_id: int, category_id: int) -> list[dict]:
        ent = _stage_entity(entity_type_id, category_id)
        return [s for s in self.statuses if s["ENTITY_ID"] == ent]

    def assign(self, kind: EntityKind, record: dict, fields: dict, legacy: bool, creating: bool) -> dict:
        """Write request fields into a record; returns {key: old value} for changed keys."""
        changed: dict[str, Any] = {}
        for name, value in (fields or {}).items():
            name = str(name)
            if not legacy and name.lower() == "fm":
                self._item_fm(kind, record, value)
                changed["fm"] = None
                continue
            f = kind.fields.resolve(name, legacy)
            if f is None or ("R" in f.flags and f.key != "id") or f.key == "id":
                continue  # unknown and read-only fields are ignored, as Bitrix24 does
            if f.type == "crm_multifield":
                self.stores[kind.entity_type_id].apply_multifields(record, f.legacy, value)
                changed["fm"] = None
                continue
            if legacy and f.key == "categoryId" and not creating:
                continue  # crm.deal.update cannot move a deal between pipelines
            try:
                native = to_native(f, value)
            except (TypeError, ValueError) as exc:
                raise CrmError(f"Invalid value of field {name}", "INVALID_ARG_VALUE") from exc
            if record.get(f.key) != native:
                changed[f.key] = record.get(f.key)
                if native is None:
                    record.pop(f.key, None)
                else:
                    record[f.key] = native
        return changed

    def _item_fm(self, kind: EntityKind, record: dict, value: Any) -> None:
        store = self.stores[kind.entity_type_id]
        items = value.items() if isinstance(value, dict) else enumerate(value or [])
        for key, el in items:
            if not isinstance(el, dict):
                continue
            el = {str(k).lower(): v for k, v in el.items()}
            code = str(el.get("typeid") or "").upper()
            if code not in MULTI_TYPES:
                continue
            legacy_el = {"VALUE": el.get("value"), "VALUE_TYPE": el.get("valuetype")}
            if str(key).isdigit() and not str(key).startswith("n"):
                legacy_el["ID"] = int(key)
            store.apply_multifields(record, code, [legacy_el])

    def add(self, entity_type_id: int, fields: dict, caller: Any, legacy: bool) -> dict:
        """Create a record from request fields; publishes ``crm.changed`` action=add."""
        kind = self.kinds.get(entity_type_id)
        if kind is None:
            raise CrmError("Smart process not found", "NOT_FOUND")
        user = getattr(caller, "user_id", 1) or 1
        now = time.time()
        rec: dict[str, Any] = {"createdTime": now, "updatedTime": now, "createdBy": user, "updatedBy": user,
                               "assignedById": user, "opened": "Y"}
        if kind.name in ("deal", "lead", "item"):
            rec.update({"currencyId": "RUB", "opportunity": 0.0, "isManualOpportunity": "N", "movedBy": user,
                        "movedTime": now})
        if kind.name == "deal":
            rec.update({"categoryId": 0, "isNew": "Y", "isRecurring": "N", "isReturnCustomer": "N",
                        "isRepeatedApproach": "N", "taxValue": 0.0, "closed": "N", "probability": None})
        if kind.name == "item":
            rec["categoryId"] = self.default_category(entity_type_id)
        if kind.name in ("contact", "company", "lead"):
            rec["fm"] = []
            if kind.name == "contact":
                rec["export"] = "Y"
        self.assign(kind, rec, fields, legacy, creating=True)
        self._fix_stage(kind, rec, creating=True)
        rec = self.stores[entity_type_id].insert(rec)
        EntityStore.refresh_has_flags(rec) if "fm" in rec else None
        self._publish(kind, "add", rec["id"], None, rec, caller)
        return rec

    def update(self, entity_type_id: int, rid: int, fields: dict, caller: Any, legacy: bool) -> dict:
        """Change a record; publishes ``crm.changed`` action=update with the old and new state."""
        kind = self.kinds[entity_type_id]
        rec = self.stores[entity_type_id].records.get(rid)
        if rec is None:
            raise CrmError("Not found", "NOT_FOUND")
        old = copy.deepcopy(rec)
        changed = self.assign(kind, rec, fields, legacy, creating=False)
        if "categoryId" in changed or "stageId" in changed:
            self._fix_stage(kind, rec, creating=False, moved=True, user=getattr(caller, "user_id", 1))
        rec["updatedTime"] = max(time.time(), old.get("updatedTime") or 0)
        rec["updatedBy"] = getattr(caller, "user_id", 1) or 1
        self._publish(kind, "update", rid, old, rec, caller)
        return rec

    def delete(self, entity_type_id: int, rid: int, caller: Any) -> dict:
        kind = self.kinds[entity_type_id]
        rec = self.stores[entity_type_id].delete(rid)
        if rec is None:
            raise CrmError("Not found", "NOT_FOUND")
        self._publish(kind, "delete", rid, rec, None, caller)
        return rec

    def _publish(self, kind: EntityKind, action: str, rid: int, old: Any, new: Any, caller: Any) -> None:
        self.portal.bus.publish("crm.changed", entity_type_id=kind.entity_type_id, entity=kind.name,
                                action=action, id=rid, old=old, new=new, caller=caller)

    def default_category(self, entity_type_id: int) -> int:
        cats = self.categories.get(entity_type_id) or []
        return next((c["id"] for c in cats if c.get("isDefault") == "Y"), cats[0]["id"] if cats else 0)

    def _fix_stage(self, kind: EntityKind, rec: dict, creating: bool, moved: bool = False, user: int = 1) -> None:
        if kind.name not in ("deal", "lead", "item"):
            return
        cat = rec.get("categoryId", 0) if kind.name != "lead" else 0
        stages = self.stages(kind.entity_type_id, cat)
        if not stages:
            return
        stage = next((s for s in stages if s["STATUS_ID"] == rec.get("stageId")), None)
        if stage is None:
            stage = stages[0]
            rec["stageId"] = stage["STATUS_ID"]
        sem = stage["SEMANTICS"] or "P"
        rec["stageSemanticId"] = sem
        if kind.name == "deal":
            rec["closed"] = "N" if sem == "P" else "Y"
        if moved:
            rec["movedTime"], rec["movedBy"] = time.time(), user or 1

    # -- rendering ----------------------------------------------------------------------------
    def render_legacy(self, kind: EntityKind, rec: dict, select: list[str] | None) -> dict:
        """A record as crm.deal/lead/contact/company.get/list print it."""
        fields = kind.fields
        wanted = _legacy_select(fields, select)
        out: dict[str, Any] = {}
        for f in wanted:
            if f.type == "crm_multifield":
                vals = [{"ID": str(m[0]), "VALUE_TYPE": m[2], "VALUE": m[3], "TYPE_ID": m[1]}
                        for m in rec.get("fm", ()) if m[1] == f.legacy]
                if vals:
                    out[f.legacy] = vals
                continue
            out[f.legacy] = to_legacy(f, rec.get(f.key))
        return out

    def _item_plan(self, kind: EntityKind, original_uf: bool) -> list[tuple[str, str, Any]]:
        """(printed name, storage key, renderer or None for as-is) per field, compiled once per field set.

        Listing 200,000 records renders 15 million values; deciding per value how to print it was most of
        the sandbox's time. The plan is rebuilt when the entity's fields change (its size changes).
        """
        cache = self.__dict__.setdefault("_item_plans", {})
        key = (kind.entity_type_id, original_uf, len(kind.fields.fields))
        plan = cache.get(key)
        if plan is None:
            plan = []
            for f in kind.fields.fields.values():
                if f.type == "crm_multifield" or f.key == "link":
                    continue
                plain = not f.multiple and f.type not in ("date", "datetime", "double", "boolean", "crm_company",
                                                          "crm_contact")
                plan.append((kind.fields.camel(f, original_uf), f.key, None if plain else
                             (lambda v, f=f: to_item(f, v))))
            cache[key] = plan
        return plan

    def render_item(self, kind: EntityKind, rec: dict, select: list[str] | None, original_uf: bool) -> dict:
        """A record as crm.item.* print it (camelCase, numbers as numbers)."""
        fields = kind.fields
        full = not select or "*" in select
        out: dict[str, Any] = {}
        if full:
            get = rec.get
            for name, key, render in self._item_plan(kind, original_uf):
                out[name] = get(key) if render is None else render(get(key))
        else:
            for f in fields.fields.values():
                if f.type == "crm_multifield" or f.key == "link":
                    continue
                name = fields.camel(f, original_uf)
                if name in select or f.key in select or (f.uf and f.key in select):
                    out[name] = to_item(f, rec.get(f.key))
        if full:
            for k, v in kind.item_extra.items():
                if k not in out:
                    out[k] = copy.copy(v) if isinstance(v, (list, dict)) else v  # only containers need a copy
            if "fm" in rec:
                out.update(_derived_fm(rec["fm"]))
            out["entityTypeId"] = kind.entity_type_id
        if select and not full and "id" not in out:
            out = {"id": rec["id"], **out}
        return out


def _derived_fm(fm: list) -> dict:
    first: dict[str, str] = {}
    for m in fm:
        first.setdefault(m[1], m[3])
        first.setdefault(f"{m[1]}:{m[2]}", m[3])
    return {
        "phoneMobile": first.get("PHONE:MOBILE", ""), "phoneWork": first.get("PHONE:WORK", ""),
        "phoneMailing": first.get("PHONE:MAILING", ""), "emailHome": first.get("EMAIL:HOME", ""),
        "emailWork": first.get("EMAIL:WORK", ""), "emailMailing": first.get("EMAIL:MAILING", ""),
        "imol": first.get("IM:IMOL", ""), "email": first.get("EMAIL", ""), "phone": first.get("PHONE", ""),
        "fm": [{"id": m[0], "valueType": m[2], "value": m[3], "typeId": m[1]} for m in fm],
    }


def _legacy_select(fields, select: list[str] | None) -> list[Field]:
    if not select:
        select = ["*", "UF_*"]
    out: list[Field] = []
    seen: set[str] = set()
    for s in select:
        s = str(s).upper()
        if s == "*":
            batch = [f for f in fields.fields.values() if f.legacy and not f.uf and "X" not in f.flags]
        elif s == "UF_*":
            batch = fields.user_fields
        else:
            f = fields.by_legacy.get(s)
            batch = [f] if f else []
        for f in batch:
            if f.key not in seen:
                seen.add(f.key)
                out.append(f)
    return out


def _stage_entity(entity_type_id: int, category_id: int) -> str:
    if entity_type_id == 1:
        return "STATUS"
    if entity_type_id == 2:
        return "DEAL_STAGE" if not category_id else f"DEAL_STAGE_{category_id}"
    return f"DYNAMIC_{entity_type_id}_STAGE_{category_id}"


def _iso_now() -> str:
    from .fields import fmt_time
    return fmt_time(time.time())
