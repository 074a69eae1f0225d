"""crm.deal|lead|contact|company.{list,get,add,update,delete,fields,userfield.list}.

The legacy methods print every value as a string and fail with HTTP 400 and an *empty* `error`
code (PROTOCOL.md §3.4).
"""
from __future__ import annotations

from typing import Any

from ..errors import legacy as legacy_error
from ..limits import list_cost
from ..registry import Call, Page, method
from .state import ENTITY_BY_NAME, CrmError, CrmState
from .store import FilterError


def crm_of(call: Call) -> CrmState:
    return call.portal.crm


def as_id(value: Any) -> int:
    """A positive record id from a request, or the legacy 400 error."""
    try:
        rid = int(str(value).strip())
    except (TypeError, ValueError):
        raise legacy_error("ID is not defined or invalid.") from None
    if rid <= 0:
        raise legacy_error("ID is not defined or invalid.")
    return rid


def start_of(call: Call) -> int:
    raw = call.param("start", 0)
    try:
        start = int(raw or 0)
    except (TypeError, ValueError):
        start = 0
    return -1 if start < 0 else start


def select_of(call: Call) -> list[str] | None:
    sel = call.param("select")
    if sel in (None, "", []):
        return None
    if isinstance(sel, dict):
        sel = list(sel.values())
    if isinstance(sel, str):
        sel = [sel]
    if not isinstance(sel, list):
        raise legacy_error("Parameter 'select' must be array.")
    return [str(s) for s in sel]


def _register(entity: str) -> None:
    etid = ENTITY_BY_NAME[entity]
    prefix = f"crm.{entity}"

    @method(f"{prefix}.list", "crm")
    def list_(call: Call) -> Page:
        crm = crm_of(call)
        flt, order = call.param("filter", {}), call.param("order", {})
        if flt in ("", None, []):
            flt = {}
        if order in ("", None, []):
            order = {}
        if not isinstance(flt, dict):
            raise legacy_error("Parameter 'filter' must be array.")
        if not isinstance(order, dict):
            raise legacy_error("Parameter 'order' must be array.")
        store, kind, start = crm.store(etid), crm.kind(etid), start_of(call)
        try:
            res = store.list(flt, order, start, legacy=True)
        except FilterError as exc:
            raise legacy_error(str(exc)) from None
        call.cost = list_cost(len(store), start != -1, res.keyset, res.scanned)
        select = select_of(call)
        rows = [crm.render_legacy(kind, r, select) for r in res.rows]
        return Page(rows, res.total, res.next)

    @method(f"{prefix}.get", "crm")
    def get(call: Call) -> dict:
        crm = crm_of(call)
        rid = as_id(call.param("id"))
        rec = crm.store(etid).records.get(rid)
        if rec is None:
            raise legacy_error("Not found")
        kind = crm.kind(etid)
        names = ["*", "UF_*"] + [f.legacy for f in kind.fields.fields.values() if f.type == "crm_multifield"]
        return crm.render_legacy(kind, rec, names)

    @method(f"{prefix}.add", "crm")
    def add(call: Call) -> int:
        fields = call.param("fields")
        if not isinstance(fields, dict) or not fields:
            raise legacy_error("Parameter 'fields' must be array.")
        try:
            rec = crm_of(call).add(etid, fields, call.caller, legacy=True)
        except CrmError as exc:
            raise legacy_error(exc.description) from None
        return rec["id"]

    @method(f"{prefix}.update", "crm")
    def update(call: Call) -> bool:
        rid = as_id(call.param("id"))
        fields = call.param("fields")
        if not isinstance(fields, dict):
            raise legacy_error("Parameter 'fields' must be array.")
        crm = crm_of(call)
        if rid not in crm.store(etid).records:
            raise legacy_error("Not found")
        try:
            crm.update(etid, rid, fields, call.caller, legacy=True)
        except CrmError as exc:
            raise legacy_error(exc.description) from None
        return True

    @method(f"{prefix}.delete", "crm")
    def delete(call: Call) -> bool:
        rid = as_id(call.param("id"))
        try:
            crm_of(call).delete(etid, rid, call.caller)
        except CrmError:
            raise legacy_error("Not found") from None
        return True

    @method(f"{prefix}.fields", "crm")
    def fields(call: Call) -> dict:
        kind = crm_of(call).kind(etid)
        return {f.legacy: f.describe(with_upper=False) for f in kind.fields.fields.values() if f.legacy}

    @method(f"{prefix}.userfield.list", "crm")
    def userfield_list(call: Call) -> Page:
        kind = crm_of(call).kind(etid)
        flt = call.param("filter", {}) or {}
        if not isinstance(flt, dict):
            raise legacy_error("Parameter 'filter' must be array.")
        out = []
        for f in kind.fields.user_fields:
            uf = f.uf
            if all(str(uf.get(str(k).upper().lstrip("=")) or "") == str(v) for k, v in flt.items()
                   if str(k).upper().lstrip("=") in uf):
                out.append(dict(uf))
        out.sort(key=lambda u: (int(u["SORT"]), int(u["ID"])))
        return Page(out, len(out))


for _entity in ("deal", "lead", "contact", "company"):
    _register(_entity)
