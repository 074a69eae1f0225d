"""crm.item.* (camelCase, any entityTypeId), crm.type.list, crm.category.list, crm.status.*."""
from __future__ import annotations

from typing import Any

from ..errors import RestError
from ..limits import list_cost
from ..registry import Call, Page, method
from .legacy import crm_of, select_of, start_of
from .state import CrmError
from .store import FilterError


def _arg(description: str) -> RestError:
    return RestError(400, "INVALID_ARG_VALUE", description)


def _etid(call: Call) -> int:
    raw = call.param("entityTypeId")
    if raw in (None, ""):
        raise _arg("Required parameter 'entityTypeId' is missing")
    try:
        etid = int(raw)
    except (TypeError, ValueError):
        raise _arg("Invalid value of parameter 'entityTypeId'") from None
    if crm_of(call).kind(etid) is None:
        raise RestError(400, "NOT_FOUND", "Smart process not found")
    return etid


def _item_id(call: Call) -> int:
    try:
        rid = int(call.param("id"))
    except (TypeError, ValueError):
        raise _arg("Invalid value of parameter 'id'") from None
    return rid


def _orig(call: Call) -> bool:
    return str(call.param("useOriginalUfNames", "N")).upper() in ("Y", "1", "TRUE")


def _record(call: Call, etid: int, rid: int) -> dict:
    rec = crm_of(call).store(etid).records.get(rid)
    if rec is None:
        raise RestError(400, "NOT_FOUND", "Element not found")
    return rec


def _as_dict(value: Any, name: str) -> dict:
    if value in (None, "", []):
        return {}
    if not isinstance(value, dict):
        raise _arg(f"Parameter '{name}' must be an object")
    return value


@method("crm.item.list", "crm")
def item_list(call: Call) -> Page:
    etid = _etid(call)
    crm = crm_of(call)
    store, start = crm.store(etid), start_of(call)
    try:
        res = store.list(_as_dict(call.param("filter"), "filter"), _as_dict(call.param("order"), "order"),
                         start, legacy=False)
    except FilterError as exc:
        raise _arg(str(exc)) from None
    call.cost = list_cost(len(store), start != -1, res.keyset, res.scanned)
    select, orig = select_of(call), _orig(call)
    kind = crm.kind(etid)
    return Page({"items": [crm.render_item(kind, r, select, orig) for r in res.rows]}, res.total, res.next)


@method("crm.item.get", "crm")
def item_get(call: Call) -> dict:
    etid = _etid(call)
    crm = crm_of(call)
    rec = _record(call, etid, _item_id(call))
    return {"item": crm.render_item(crm.kind(etid), rec, None, _orig(call))}


@method("crm.item.add", "crm")
def item_add(call: Call) -> dict:
    etid = _etid(call)
    fields = call.param("fields")
    if not isinstance(fields, dict) or not fields:
        raise _arg("Parameter 'fields' must be a non-empty object")
    crm = crm_of(call)
    try:
        rec = crm.add(etid, fields, call.caller, legacy=False)
    except CrmError as exc:
        raise RestError(400, exc.code or "INVALID_ARG_VALUE", exc.description) from None
    return {"item": crm.render_item(crm.kind(etid), rec, None, _orig(call))}


@method("crm.item.update", "crm")
def item_update(call: Call) -> dict:
    etid = _etid(call)
    rid = _item_id(call)
    _record(call, etid, rid)
    fields = call.param("fields")
    if not isinstance(fields, dict):
        raise _arg("Parameter 'fields' must be an object")
    crm = crm_of(call)
    rec = crm.update(etid, rid, fields, call.caller, legacy=False)
    return {"item": crm.render_item(crm.kind(etid), rec, None, _orig(call))}


@method("crm.item.delete", "crm")
def item_delete(call: Call) -> list:
    etid = _etid(call)
    rid = _item_id(call)
    _record(call, etid, rid)
    crm_of(call).delete(etid, rid, call.caller)
    return []


@method("crm.item.fields", "crm")
def item_fields(call: Call) -> dict:
    etid = _etid(call)
    kind = crm_of(call).kind(etid)
    orig = _orig(call)
    return {"fields": {kind.fields.camel(f, orig): f.describe(with_upper=True)
                       for f in kind.fields.fields.values() if f.type != "crm_multifield"}}


@method("crm.type.list", "crm")
def type_list(call: Call) -> Page:
    types = sorted(crm_of(call).types.values(), key=lambda t: t["id"])
    return Page({"types": [dict(t) for t in types]}, len(types))


@method("crm.category.list", "crm")
def category_list(call: Call) -> Page:
    raw = call.param("entityTypeId")
    try:
        etid = int(raw)
    except (TypeError, ValueError):
        raise _arg("Required parameter 'entityTypeId' is missing") from None
    crm = crm_of(call)
    if etid in (1, 3, 4):
        raise RestError(400, "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {etid} is not supported")
    if crm.kind(etid) is None:
        raise RestError(400, "NOT_FOUND", "Smart process not found")
    cats = [dict(c) for c in crm.categories.get(etid, [])]
    return Page({"categories": cats}, len(cats))


@method("crm.status.list", "crm")
def status_list(call: Call) -> Page:
    flt = _as_dict(call.param("filter"), "filter")
    order = _as_dict(call.param("order"), "order") or {"SORT": "ASC"}
    rows = [s for s in crm_of(call).statuses
            if all(str(s.get(str(k).upper().lstrip("=")) or "") == str(v) for k, v in flt.items())]
    for k, d in reversed(list(order.items())):
        key = str(k).upper()
        rows.sort(key=lambda s: (int(s[key]) if str(s.get(key, "")).isdigit() else str(s.get(key) or "")),
                  reverse=str(d).upper() == "DESC")
    return Page([dict(s) for s in rows], len(rows))


@method("crm.status.entity.types", "crm")
def status_entity_types(call: Call) -> list:
    crm = crm_of(call)
    out: list[dict] = [
        {"ID": "STATUS", "NAME": "Lead stages", "SEMANTIC_INFO": _semantic(crm, "STATUS"), "ENTITY_TYPE_ID": 1},
        {"ID": "SOURCE", "NAME": "Sources"}, {"ID": "CONTACT_TYPE", "NAME": "Contact type"},
        {"ID": "COMPANY_TYPE", "NAME": "Company type"}, {"ID": "EMPLOYEES", "NAME": "Number of employees"},
        {"ID": "INDUSTRY", "NAME": "Industry"}, {"ID": "DEAL_TYPE", "NAME": "Deal type"},
        {"ID": "HONORIFIC", "NAME": "Salutations"},
    ]
    for etid, cats in sorted(crm.categories.items()):
        for c in cats:
            cid = c["id"]
            if etid == 2:
                ent = "DEAL_STAGE" if not cid else f"DEAL_STAGE_{cid}"
                row = {"ID": ent, "NAME": f"{c['name']} deal stages", "SEMANTIC_INFO": _semantic(crm, ent)}
                if cid:
                    row.update({"PARENT_ID": "DEAL_STAGE", "PREFIX": f"C{cid}"})
                row.update({"FIELD_ATTRIBUTE_SCOPE": f"category_{cid}" if cid else "", "ENTITY_TYPE_ID": 2,
                            "CATEGORY_ID": str(cid) if cid else 0})
            else:
                ent = f"DYNAMIC_{etid}_STAGE_{cid}"
                row = {"ID": ent, "NAME": f"{c['name']} stages", "SEMANTIC_INFO": _semantic(crm, ent),
                       "PREFIX": f"DT{etid}_{cid}", "FIELD_ATTRIBUTE_SCOPE": f"category_{cid}",
                       "ENTITY_TYPE_ID": etid, "IS_ENABLED": True, "CATEGORY_ID": cid}
            out.append(row)
    return out


def _semantic(crm, entity_id: str) -> dict | list:
    st = [s for s in crm.statuses if s["ENTITY_ID"] == entity_id]
    if not st:
        return []
    succ = next((s["STATUS_ID"] for s in st if s["SEMANTICS"] == "S"), "")
    fail = next((s["STATUS_ID"] for s in st if s["SEMANTICS"] == "F"), "")
    return {"START_FIELD": st[0]["STATUS_ID"], "FINAL_SUCCESS_FIELD": succ, "FINAL_UNSUCCESS_FIELD": fail,
            "FINAL_SORT": 0}
