"""The gateway's calls against the sandbox: call, batch, strict list paging, rate limits, webhooks."""
from __future__ import annotations

import pytest

from app.bitrix import client as gateway
from app.bitrix.client import client_for
from app.bitrix.errors import (BatchCommandError, IncompleteListError, MethodError, RateLimited, ScopeMissing)


def _rest(log, portal, since=0):
    return log.select("rest", host=portal.domain)[since:]


def test_call_and_envelope(b24_app, installed_portal):
    portal = installed_portal(data_size=60)
    c = client_for(portal.id)
    assert c.call("profile")["ADMIN"] is True
    env = c.call_raw("crm.deal.list", {"select": ["ID"]})
    assert len(env["result"]) == 50 and env["total"] == 60 and env["next"] == 50
    assert {"start", "finish", "operating"} <= set(env["time"])
    with pytest.raises(MethodError) as exc:
        c.call("crm.deal.get", {"id": 10 ** 9})
    assert exc.value.status == 400 and exc.value.method == "crm.deal.get"


def test_list_all_returns_every_record_in_few_requests(b24_app, b24_sandbox, installed_portal):
    portal = installed_portal(data_size=700)
    store = portal.state.crm.store(2)
    c = client_for(portal.id)
    before = len(_rest(b24_sandbox.log, portal))
    ids = [int(r["ID"]) for r in c.list_all("crm.deal.list", {"select": ["TITLE"], "order": {"TITLE": "DESC"}})]
    assert ids == sorted(store.ids) and len(ids) == len(store)  # complete, ascending, no duplicates
    requests_made = len(_rest(b24_sandbox.log, portal)) - before
    assert requests_made <= 4  # 1 + 2 + 4 + 8 pages per request, not one request per page
    items = [i["id"] for i in c.list_all("crm.item.list", {"entityTypeId": 3, "select": ["id"]})]
    assert items == sorted(portal.state.crm.store(3).ids)
    users = [int(u["ID"]) for u in c.list_all("user.get", {"FILTER": {"ACTIVE": True}})]
    assert users == sorted(uid for uid, u in portal.state.crm.users.items() if u.get("ACTIVE"))
    # an existing >ID filter is where the listing starts
    tail = [int(r["ID"]) for r in c.list_all("crm.deal.list", {"filter": {">ID": ids[-10]}})]
    assert tail == ids[-9:]


def test_list_all_exact_multiple_of_page_size(b24_app, installed_portal):
    portal = installed_portal(data_size=0)
    c = client_for(portal.id)
    for n in range(100):
        c.call("crm.deal.add", {"fields": {"TITLE": f"d{n}"}})
    assert len(list(c.list_all("crm.deal.list", {"select": ["ID"]}))) == 100


def test_a_failing_page_raises_never_a_short_list(b24_app, installed_portal, flaky_deal_list):
    portal = installed_portal(data_size=400)
    ids = sorted(portal.state.crm.store(2).ids)
    flaky_deal_list["fail_after"] = ids[149]  # the page after 150 records fails
    c = client_for(portal.id)
    got = []
    with pytest.raises(IncompleteListError) as exc:
        for row in c.list_all("hub24test.deal.list", {"select": ["ID"]}):
            got.append(int(row["ID"]))
    assert got == ids[:150]  # what came before the failure, then the error: the caller knows
    assert exc.value.code == "INTERNAL_SERVER_ERROR" and "150 records" in str(exc.value)
    with pytest.raises(IncompleteListError):
        list(c.list_all("hub24test.deal.list", {"select": ["ID"]}))


def test_a_page_out_of_order_raises(b24_app, installed_portal, flaky_deal_list):
    portal = installed_portal(data_size=200)
    ids = sorted(portal.state.crm.store(2).ids)
    flaky_deal_list.update(fail_after=ids[49], mode="shuffle")
    with pytest.raises(IncompleteListError) as exc:
        list(client_for(portal.id).list_all("hub24test.deal.list", {"select": ["ID"]}))
    assert exc.value.code == "PAGE_INCONSISTENT"


def test_batch_results_by_key_and_errors_surface(b24_app, b24_sandbox, installed_portal):
    portal = installed_portal(data_size=130)
    c = client_for(portal.id)
    ids = sorted(portal.state.crm.store(2).ids)
    before = len(_rest(b24_sandbox.log, portal))
    out = c.batch({f"d{i}": ("crm.deal.get", {"id": i}) for i in ids[:120]})
    assert [out[f"d{i}"]["ID"] for i in ids[:120]] == [str(i) for i in ids[:120]]
    assert len(_rest(b24_sandbox.log, portal)) - before == 3  # chunks of 50
    as_list = c.batch([("crm.deal.get", {"id": ids[0]}), ("profile", {})])
    assert as_list[0]["ID"] == str(ids[0]) and as_list[1]["ID"] == "1"
    refs = c.batch({"first": ("crm.deal.list", {"order": {"ID": "ASC"}, "select": ["ID"], "start": -1}),
                    "again": ("crm.deal.get", {"id": "$result[first][0][ID]"})})
    assert refs["again"]["ID"] == str(ids[0])

    cmds = {"ok": ("crm.deal.get", {"id": ids[0]}), "missing": ("crm.deal.get", {"id": 10 ** 9}),
            "unknown": ("no.such.method", {}), "after": ("profile", {})}
    with pytest.raises(BatchCommandError) as exc:
        c.batch(cmds)
    err = exc.value
    assert err.key == "missing" and err.method == "crm.deal.get"
    assert set(err.errors) == {"missing", "unknown"} and set(err.results) == {"ok", "after"}
    with pytest.raises(BatchCommandError) as halted:
        c.batch(cmds, halt=True)
    assert set(halted.value.errors) == {"missing"} and "after" not in halted.value.results


def test_scope_and_method_errors_map_onto_the_tree(b24_app, installed_portal):
    portal = installed_portal(data_size=0)
    c = client_for(portal.id)
    portal.state.installations[c.token.bitrix_app.client_id].scopes = ["crm"]  # an install without `user`
    for tok in list(portal.state.sandbox.access_tokens.values()):
        if tok.member_id == portal.member_id:
            tok.scopes = ["crm"]
    with pytest.raises(ScopeMissing):
        c.call("user.get")
    with pytest.raises(MethodError) as exc:
        c.call("no.such.method")
    assert exc.value.code == "ERROR_METHOD_NOT_FOUND" and exc.value.status == 404


def test_webhook_portal(b24_app, installed_portal):
    portal = installed_portal(data_size=80, webhook=True)
    c = client_for(portal.id)
    assert c.is_webhook and c.call("profile")["ID"] == "1"
    assert len(list(c.list_all("crm.deal.list", {"select": ["ID"]}))) == 80


def _fill_portal_bucket(state):
    while state.limiter.admit():
        pass


def test_503_in_a_web_request_raises_at_once(b24_app, make_b24_sandbox, installed_portal):
    handle = make_b24_sandbox(limits="standard")
    portal = installed_portal(handle=handle)
    _fill_portal_bucket(portal.state)  # someone else used up the portal's budget
    slept = []
    with b24_app.test_request_context("/"):
        c = client_for(portal.id)
        c._sleep = slept.append
        with pytest.raises(RateLimited) as exc:
            c.call("profile")
    assert exc.value.code == "QUERY_LIMIT_EXCEEDED" and exc.value.retry_after > 0
    assert slept == [] and len(handle.log.select("rest", host=portal.domain)) == 1


def test_503_in_a_job_backs_off_and_succeeds(b24_app, make_b24_sandbox, installed_portal):
    handle = make_b24_sandbox(limits="standard")
    portal = installed_portal(handle=handle)
    _fill_portal_bucket(portal.state)
    c = client_for(portal.id, interactive=False)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        portal.state.limiter.reset()  # time passes: the portal's bucket drains

    c._sleep = sleep
    c.limiter._sleep = lambda s: None
    assert c.call("profile")["ID"] == "1"
    statuses = [e["status"] for e in handle.log.select("rest", host=portal.domain)]
    assert statuses == [503, 200] and slept == [1.0]


def test_429_uses_operating_reset_at(b24_app, make_b24_sandbox, installed_portal, monkeypatch):
    handle = make_b24_sandbox(limits="standard", operating_limit=0.001)
    portal = installed_portal(handle=handle)
    c = client_for(portal.id, interactive=True)
    c.call("crm.deal.list", {"select": ["ID"]})  # spends the method's tiny operating budget
    reset_at = float(c._redis.get(f"{gateway.OPERATING_KEY}{portal.member_id}:crm.deal.list"))
    with pytest.raises(RateLimited) as exc:
        c.call("crm.deal.list", {"select": ["ID"]})
    assert exc.value.code == "OPERATION_TIME_LIMIT"
    assert 1.0 <= exc.value.retry_after and abs(exc.value.retry_after - (reset_at - __import__("time").time())) < 5
    assert c.call("profile")["ID"] == "1"  # other methods are not blocked

    job = client_for(portal.id, interactive=False)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        portal.state.limiter.reset()  # the operating window has passed

    job._sleep = sleep
    assert len(job.call("crm.deal.list", {"select": ["ID"]})) == 0
    assert len(waits) == 1 and waits[0] > 500  # waited for the window, not a blind retry
