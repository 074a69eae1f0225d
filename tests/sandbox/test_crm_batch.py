"""CRM list semantics (filters, order, select, multi-fields, crm.item) and batch."""
from __future__ import annotations

from urllib.parse import quote


def _ids(body):
    res = body["result"]
    rows = res["items"] if isinstance(res, dict) else res
    return [int(r.get("ID", r.get("id"))) for r in rows]


def test_filter_prefixes(rest, portal):
    recs = portal.crm.store(2).records
    _, b = rest("crm.deal.list", {"filter": {">=OPPORTUNITY": 500000, "<OPPORTUNITY": 600000}, "select": ["ID"]})
    assert b["total"] == sum(1 for r in recs.values() if 500000 <= r["opportunity"] < 600000)
    _, b = rest("crm.deal.list", {"filter": {"@ID": [3, 5, 7]}, "select": ["ID"]})
    assert _ids(b) == [3, 5, 7]
    _, b = rest("crm.deal.list", {"filter": {"!@ID": [1, 2], "<=ID": 4}, "select": ["ID"]})
    assert _ids(b) == [3, 4]
    _, b = rest("crm.deal.list", {"filter": {"!CATEGORY_ID": 0, "<ID": 20}, "select": ["ID", "CATEGORY_ID"]})
    assert b["result"] and all(r["CATEGORY_ID"] != "0" for r in b["result"])
    _, b = rest("crm.deal.list", {"filter": {"%TITLE": "deal #1"}, "select": ["TITLE"]})
    assert b["total"] and all("deal #1" in r["TITLE"].lower() for r in b["result"])
    _, b = rest("crm.deal.list", {"filter": {"=%TITLE": "Deal #1%"}, "select": ["TITLE"]})
    assert b["total"] and all(r["TITLE"].startswith("Deal #1") for r in b["result"])
    _, b = rest("crm.deal.list", {"filter": {">DATE_MODIFY": "2100-01-01T00:00:00+03:00"}})
    assert b["total"] == 0 and b["result"] == []


def test_order_and_select(rest):
    _, b = rest("crm.deal.list", {"order": {"OPPORTUNITY": "DESC", "ID": "ASC"}, "select": ["ID", "OPPORTUNITY"]})
    amounts = [float(r["OPPORTUNITY"]) for r in b["result"]]
    assert amounts == sorted(amounts, reverse=True)
    assert set(b["result"][0]) == {"ID", "OPPORTUNITY"}
    _, b = rest("crm.deal.list", {"select": ["*"], "filter": {"ID": 1}})
    assert "TITLE" in b["result"][0] and not any(k.startswith("UF_") for k in b["result"][0])
    _, b = rest("crm.deal.list", {"select": ["UF_*"], "filter": {"ID": 1}})
    assert b["result"][0] and all(k.startswith("UF_") for k in b["result"][0])
    _, b = rest("crm.contact.list", {"select": ["ID", "PHONE"], "filter": {"ID": 1}})
    assert b["result"][0]["PHONE"][0]["TYPE_ID"] == "PHONE"


def test_multifield_update_semantics(rest):
    _, b = rest("crm.contact.add", {"fields": {"NAME": "Multi", "PHONE": [
        {"VALUE": "111111", "VALUE_TYPE": "WORK"}, {"VALUE": "222222", "VALUE_TYPE": "WORK"},
        {"VALUE": "333333", "VALUE_TYPE": "WORK"}]}})
    cid = b["result"]
    phones = rest("crm.contact.get", {"id": cid})[1]["result"]["PHONE"]
    a, bb, c = (int(p["ID"]) for p in phones)
    rest("crm.contact.update", {"id": cid, "fields": {"PHONE": [{"ID": bb, "VALUE": "444444", "VALUE_TYPE": "MOBILE"}]}})
    rest("crm.contact.update", {"id": cid, "fields": {"PHONE": [{"VALUE": "55555", "VALUE_TYPE": "WORK"}]}})
    rest("crm.contact.update", {"id": cid, "fields": {"PHONE": [{"ID": a, "DELETE": "Y"}, {"ID": c, "VALUE": ""}]}})
    phones = rest("crm.contact.get", {"id": cid})[1]["result"]["PHONE"]
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in phones] == [("444444", "MOBILE"), ("55555", "WORK")]
    _, b = rest("crm.contact.list", {"filter": {"PHONE": "55555"}, "select": ["ID"]})
    assert _ids(b) == [cid]


def test_crm_item_camel_case_and_original_uf_names(rest, portal):
    _, b = rest("crm.item.list", {"entityTypeId": 2, "filter": {"@id": [1]}, "select": ["*"]})
    item = b["result"]["items"][0]
    assert item["id"] == 1 and isinstance(item["opportunity"], (int, float)) and item["entityTypeId"] == 2
    assert any(k.startswith("ufCrm") for k in item)
    _, b = rest("crm.item.get", {"entityTypeId": 2, "id": 1, "useOriginalUfNames": "Y"})
    assert any(k.startswith("UF_CRM_") for k in b["result"]["item"])
    _, b = rest("crm.item.add", {"entityTypeId": 128, "fields": {"title": "Кв. тест", "ufCrm1_1721244000": 55.5}})
    new = b["result"]["item"]
    assert new["title"] == "Кв. тест" and new["ufCrm1_1721244000"] == 55.5 and new["stageId"].startswith("DT128")
    _, b = rest("crm.item.update", {"entityTypeId": 128, "id": new["id"], "fields": {"title": "Renamed"}})
    assert b["result"]["item"]["title"] == "Renamed"
    _, b = rest("crm.item.list", {"entityTypeId": 1, "filter": {"0": {"logic": "OR", "0": {"id": 1},
                                                                      "1": {"id": 2}}}, "select": ["id"]})
    assert _ids(b) == [1, 2]
    assert rest("crm.item.delete", {"entityTypeId": 128, "id": new["id"]})[0] == 200
    assert rest("crm.item.get", {"entityTypeId": 128, "id": new["id"]})[1]["error"] == "NOT_FOUND"


def test_changes_are_published_on_the_bus(rest, portal):
    seen = []
    portal.bus.subscribe("crm.changed", lambda **kw: seen.append(kw))
    did = rest("crm.deal.add", {"fields": {"TITLE": "Bus"}})[1]["result"]
    rest("crm.deal.update", {"id": did, "fields": {"STAGE_ID": "WON"}})
    rest("crm.deal.delete", {"id": did})
    mine = [(e["entity"], e["action"], e["id"]) for e in seen if e["id"] == did and e["entity"] == "deal"]
    assert mine == [("deal", "add", did), ("deal", "update", did), ("deal", "delete", did)]
    upd = next(e for e in seen if e["action"] == "update" and e["id"] == did)
    assert upd["old"]["stageId"] == "NEW" and upd["new"]["stageId"] == "WON" and upd["new"]["closed"] == "Y"


def test_meta_methods(rest):
    cats = rest("crm.category.list", {"entityTypeId": 2})[1]["result"]["categories"]
    assert {c["id"] for c in cats} >= {0, 1, 2}
    assert rest("crm.category.list", {"entityTypeId": 999})[1]["error"] == "NOT_FOUND"
    types = rest("crm.type.list")[1]["result"]["types"]
    assert {t["entityTypeId"] for t in types} == {128, 130}
    stages = rest("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}})[1]["result"]
    assert [s["STATUS_ID"] for s in stages][0] == "C1:NEW"
    ufs = rest("crm.deal.userfield.list")[1]["result"]
    assert {"string", "integer", "double", "boolean", "date", "datetime", "enumeration", "money", "url", "address",
            "employee", "crm", "file"} <= {u["USER_TYPE_ID"] for u in ufs}
    assert any(u.get("LIST") for u in ufs)


def test_users_and_departments(rest, portal):
    _, b = rest("user.get", {"ADMIN_MODE": "True", "filter": {"ACTIVE": True}})
    assert b["result"] and all(u["ACTIVE"] is True for u in b["result"])
    _, b = rest("user.get", {"UF_DEPARTMENT": 2})
    assert b["result"] and all(2 in u["UF_DEPARTMENT"] for u in b["result"])
    _, b = rest("user.get", {"filter": {">ID": 3}, "start": -1})
    assert b["total"] == 0 and int(b["result"][0]["ID"]) == 4
    assert rest("user.admin")[1]["result"] is True
    assert rest("profile")[1]["result"]["ADMIN"] is True
    deps = rest("department.get")[1]["result"]
    assert any("PARENT" not in d for d in deps) and any(d.get("UF_HEAD") for d in deps)


def test_batch_references_halt_and_errors(rest, hook_url, portal):
    _, b = rest("batch", {"halt": 0, "cmd": {
        "u": "user.current",
        "d": "department.get?ID=$result[u][UF_DEPARTMENT][0]",
        "l": "crm.deal.list?select[]=ID&order[ID]=ASC",
        "g": "crm.deal.get?id=$result[l][3][ID]",
        "bad": "crm.deal.get?id=0",
        "nested": "batch?cmd[0]=user.current",
    }})
    res = b["result"]
    assert res["result"]["d"][0]["ID"] == res["result"]["u"]["UF_DEPARTMENT"][0].__str__()
    assert res["result"]["g"]["ID"] == "4"
    assert res["result_total"]["l"] == len(portal.crm.store(2)) and res["result_next"]["l"] == 50
    assert set(res["result_error"]) == {"bad", "nested"}
    assert res["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert set(res["result_time"]) == {"u", "d", "l", "g"}
    _, b = rest("batch", {"halt": 1, "cmd": ["crm.deal.get?id=0", "user.current"]})
    # halt=1 stops at the first failure; integer keys 0..n come back as a JSON list, as PHP prints them
    assert b["result"]["result"] == [] and len(b["result"]["result_error"]) == 1
    status, b = rest("batch", {"cmd": {str(i): "user.current" for i in range(51)}})
    assert (status, b["error"]) == (400, "ERROR_BATCH_LENGTH_EXCEEDED")
    status, b = rest("batch", {"cmd": "nope"})
    assert status == 400 and "error" in b
    # the double-encoded query-string form of the docs
    import requests
    cmd = quote("crm.deal.get?id=5", safe="")
    r = requests.get(hook_url + f"batch?cmd[x]={cmd}", timeout=10)
    assert r.json()["result"]["result"]["x"]["ID"] == "5"
