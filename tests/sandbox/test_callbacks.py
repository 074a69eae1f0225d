"""Events, offline events, robots and placements, as an app receives them."""
from __future__ import annotations

import json

import pytest

from sandbox import SandboxError
from tests.sandbox.helpers_s2 import fixture, handle, installed, portal, receiver  # noqa: F401

OPTIONAL_AUTH = {"expires", "user_id", "refresh_token"}


def bind(portal, installed, receiver, *events, path="/events"):
    for name in events:
        portal.call("event.bind", {"event": name, "handler": receiver.url + path}, auth=installed["auth"])


def add_deal(portal, installed, **fields):
    fields.setdefault("TITLE", "Test deal")
    return int(portal.call("crm.deal.add", {"fields": fields}, auth=installed["auth"])["result"])


def same_keys(got: dict, documented: dict, extra: set = frozenset()) -> None:
    assert set(documented) <= set(got) and set(got) - set(documented) <= set(extra), (set(got), set(documented))
    for key, value in documented.items():
        if isinstance(value, dict) and value:
            same_keys(got[key], value, extra)


@pytest.mark.parametrize("entity, method_prefix, fixture_prefix", [
    ("deal", "crm.deal", "event_oncrmdeal"), ("lead", "crm.lead", "event_oncrmlead"),
    ("contact", "crm.contact", "event_oncrmcontact"), ("company", "crm.company", "event_oncrmcompany"),
])
def test_crm_events_delivered_with_documented_shape(portal, receiver, installed, entity, method_prefix,
                                                    fixture_prefix):
    name = entity.upper()
    bind(portal, installed, receiver, f"ONCRM{name}ADD", f"ONCRM{name}UPDATE", f"ONCRM{name}DELETE")
    auth = installed["auth"]
    new_id = int(portal.call(f"{method_prefix}.add", {"fields": {"TITLE": "x", "NAME": "x"}}, auth=auth)["result"])
    portal.call(f"{method_prefix}.update", {"id": new_id, "fields": {"COMMENTS": "y"}}, auth=auth)
    portal.call(f"{method_prefix}.delete", {"id": new_id}, auth=auth)
    got = receiver.wait("/events", 3)
    assert [r["form"]["event"] for r in got] == [f"ONCRM{name}ADD", f"ONCRM{name}UPDATE", f"ONCRM{name}DELETE"]
    for req, action in zip(got, ("add", "update", "delete")):
        same_keys(req["form"], fixture(f"{fixture_prefix}{action}.json"), OPTIONAL_AUTH)
        assert req["form"]["data"]["FIELDS"]["ID"] == str(new_id)
        assert req["form"]["auth"]["application_token"] == portal.installation(installed["client_id"])["application_token"]
        assert req["form"]["auth"]["user_id"] == "1"


def test_dynamic_item_events_and_move_to_category(portal, receiver, installed):
    bind(portal, installed, receiver, "ONCRMDYNAMICITEMADD", "ONCRMDEALMOVETOCATEGORY", "ONCRMDEALADD")
    auth = installed["auth"]
    portal.call("crm.item.add", {"entityTypeId": 128, "fields": {"title": "Flat 1"}}, auth=auth)
    deal = add_deal(portal, installed)
    portal.call("crm.item.update", {"entityTypeId": 2, "id": deal, "fields": {"categoryId": 1}}, auth=auth)
    got = receiver.wait("/events", 3)
    by_event = {r["form"]["event"]: r["form"] for r in got}
    assert set(by_event) == {"ONCRMDYNAMICITEMADD", "ONCRMDEALADD", "ONCRMDEALMOVETOCATEGORY"}
    same_keys(by_event["ONCRMDYNAMICITEMADD"], fixture("event_oncrmdynamicitemadd.json"), OPTIONAL_AUTH)
    assert by_event["ONCRMDYNAMICITEMADD"]["data"]["FIELDS"]["ENTITY_TYPE_ID"] == "128"
    move = by_event["ONCRMDEALMOVETOCATEGORY"]
    same_keys(move, fixture("event_oncrmdealmovetocategory.json"), OPTIONAL_AUTH)
    assert move["data"]["FIELDS"]["CATEGORY_ID"] == "1" and move["data"]["FIELDS"]["STAGE_ID"].startswith("C1:")


def test_no_events_before_install_finish(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/", install_url=receiver.url + "/install", scopes=["crm"])
    portal.install(app["client_id"])
    auth = receiver.on("/install")[0]["form"]["AUTH_ID"]
    portal.call("event.bind", {"event": "ONCRMDEALADD", "handler": receiver.url + "/events"}, auth=auth)
    portal.call("crm.deal.add", {"fields": {"TITLE": "before"}}, auth=auth)
    portal.flush()
    assert receiver.on("/events") == []
    portal.finish_install(app["client_id"])
    portal.call("crm.deal.add", {"fields": {"TITLE": "after"}}, auth=auth)
    assert len(receiver.wait("/events", 1)) == 1


def test_change_by_automation_carries_no_tokens(portal, receiver, installed):
    bind(portal, installed, receiver, "ONCRMDEALUPDATE")
    deal = add_deal(portal, installed)
    portal.move_deal(deal, "PREPARATION", user_id=None)
    auth = receiver.wait("/events")[0]["form"]["auth"]
    assert "access_token" not in auth and "refresh_token" not in auth
    assert auth["application_token"] and auth["member_id"] == portal.member_id


def test_drop_share_is_respected_and_never_retried(portal, receiver, installed):
    bind(portal, installed, receiver, "ONCRMDEALADD")
    portal.set_delivery_faults(drop_share=0.5, seed=7)
    for i in range(40):
        add_deal(portal, installed, TITLE=f"d{i}")
    portal.flush()
    records = portal.deliveries(client_id=installed["client_id"], event="ONCRMDEALADD")
    dropped = [d for d in records if d["status"] == "dropped"]
    sent = [d for d in records if d["status"] == "sent"]
    assert len(records) == 40 and len(dropped) + len(sent) == 40
    assert 8 <= len(dropped) <= 32
    assert len(receiver.on("/events")) == len(sent)


def test_failed_online_delivery_is_not_retried(portal, receiver, installed):
    receiver.routes["/events"] = lambda rec: (500, "boom")
    bind(portal, installed, receiver, "ONCRMDEALADD")
    add_deal(portal, installed)
    portal.flush()
    assert len(receiver.on("/events")) == 1
    assert [d["status"] for d in portal.deliveries(event="ONCRMDEALADD")] == ["failed"]


def test_delayed_deliveries_still_arrive(portal, receiver, installed):
    bind(portal, installed, receiver, "ONCRMDEALADD")
    portal.set_delivery_faults(delay_share=1.0, delay_seconds=0.2)
    add_deal(portal, installed)
    assert portal.flush()
    assert len(receiver.on("/events")) == 1


def test_event_bind_errors_and_get_unbind(portal, receiver, installed):
    auth = installed["auth"]
    with pytest.raises(SandboxError) as exc:
        portal.call("event.bind", {"event": "ONNOSUCHEVENT", "handler": receiver.url}, auth=auth)
    assert exc.value.body == fixture("event_bind_error.json") and exc.value.status == 400
    with pytest.raises(SandboxError) as exc:
        portal.call("event.bind", {"event": "ONCRMDEALADD", "handler": "ftp://x"}, auth=auth)
    assert exc.value.status == 400
    bind(portal, installed, receiver, "ONCRMLEADADD")
    got = portal.call("event.get", auth=auth)["result"]
    assert got == [{"event": "ONCRMLEADADD", "handler": receiver.url + "/events", "auth_type": "0", "offline": 0}]
    out = portal.call("event.unbind", {"event": "ONCRMLEADADD", "handler": receiver.url + "/events"}, auth=auth)
    assert out["result"] == {"count": 1}
    user3 = portal.issue_tokens(installed["client_id"], user_id=3)["access_token"]
    with pytest.raises(SandboxError) as exc:
        portal.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"}, auth=user3)
    assert (exc.value.status, exc.value.code) == (403, "ACCESS_DENIED")


def test_offline_events_latest_state_and_reserve_then_clear(portal, receiver, installed):
    auth = installed["auth"]
    portal.call("event.bind", {"event": "ONCRMDEALUPDATE", "event_type": "offline"}, auth=auth)
    portal.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"}, auth=auth)
    a, b = add_deal(portal, installed), add_deal(portal, installed)
    for i in range(5):
        portal.call("crm.deal.update", {"id": a, "fields": {"COMMENTS": str(i)}}, auth=auth)
    portal.call("crm.deal.update", {"id": b, "fields": {"COMMENTS": "b"}}, auth=auth)
    listed = portal.call("event.offline.list", auth=auth)
    assert listed["total"] == 4  # two adds + one record per updated deal
    same_keys(listed["result"][0], fixture("event_offline_list_response.json")["result"][0])

    reserved = portal.call("event.offline.get", {"clear": 0, "limit": 3}, auth=auth)["result"]
    pid = reserved["process_id"]
    assert pid and len(reserved["events"]) == 3
    same_keys(reserved["events"][0], fixture("event_offline_get_response.json")["result"]["events"][0])
    # a reserved batch is hidden from other readers; a change to a reserved object makes a new record
    rest = portal.call("event.offline.get", {"clear": 0}, auth=auth)["result"]
    assert len(rest["events"]) == 1 and rest["process_id"] != pid
    ids = {e["EVENT_DATA"]["FIELDS"]["ID"] for e in reserved["events"] + rest["events"]}
    assert ids == {str(a), str(b)}
    failed = reserved["events"][0]["MESSAGE_ID"]
    assert portal.call("event.offline.error", {"process_id": pid, "message_id": [failed]}, auth=auth)["result"]
    assert portal.call("event.offline.clear", {"process_id": pid}, auth=auth)["result"] is True
    assert portal.call("event.offline.clear", {"process_id": rest["process_id"]}, auth=auth)["result"] is True
    assert portal.call("event.offline.list", auth=auth)["total"] == 1  # only the one marked as error
    errors = portal.call("event.offline.get", {"error": 1}, auth=auth)["result"]["events"]
    assert [e["MESSAGE_ID"] for e in errors] == [failed]
    with pytest.raises(SandboxError) as exc:
        portal.call("event.offline.clear", {}, auth=auth)
    assert exc.value.status == 400


def test_offline_get_default_clears_and_onofflineevent_notifies(portal, receiver, installed):
    auth = installed["auth"]
    portal.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"}, auth=auth)
    bind(portal, installed, receiver, "ONOFFLINEEVENT", path="/offline")
    add_deal(portal, installed)
    notice = receiver.wait("/offline")[0]["form"]
    assert notice["event"] == "ONOFFLINEEVENT" and notice["auth"]["refresh_token"]
    got = portal.call("event.offline.get", auth=auth)["result"]
    assert got["process_id"] is None and len(got["events"]) == 1
    assert portal.call("event.offline.get", auth=auth)["result"]["events"] == []


ROBOT = {"CODE": "transfer_deal", "NAME": "Transfer", "USE_SUBSCRIPTION": "Y",
         "PROPERTIES": {"partner": {"Name": "Partner", "Type": "string"}},
         "RETURN_PROPERTIES": {"remoteId": {"Name": "Remote id", "Type": "int"}}}


def test_robot_invocation_and_return_values(portal, receiver, installed):
    from b24pysdk.credentials.oauth_workflow_data import OAuthWorkflowData

    auth = installed["auth"]
    robot = dict(ROBOT, HANDLER=receiver.url + "/robots/transfer_deal")
    assert portal.call("bizproc.robot.add", robot, auth=auth)["result"] is True
    assert portal.call("bizproc.robot.list", auth=auth)["result"] == ["transfer_deal"]
    portal.add_rule("EXECUTING", "transfer_deal", {"partner": "acme"})
    deal = add_deal(portal, installed)
    portal.move_deal(deal, "PREPARATION")
    portal.move_deal(deal, "EXECUTING")
    req = receiver.wait("/robots/transfer_deal")[0]
    form = req["form"]
    assert form["document_id"] == {"0": "crm", "1": "CCrmDocumentDeal", "2": f"DEAL_{deal}"}
    assert form["properties"] == {"partner": "acme"} and form["code"] == "transfer_deal"
    parsed = OAuthWorkflowData.from_dict(dict(req["pairs"]))  # b24pysdk accepts the callback
    assert parsed.use_subscription is True and parsed.auth.member_id == portal.member_id
    runs = portal.robot_runs()
    assert [r["status"] for r in runs] == ["waiting"]
    sent = portal.call("bizproc.event.send", {"event_token": form["event_token"],
                                              "return_values": {"remoteId": 42}, "log_message": "done"}, auth=auth)
    assert sent["result"] is True
    run = portal.robot_runs()[0]
    assert run["status"] == "completed" and run["return_values"] == {"remoteId": 42} and run["log"] == ["done"]
    with pytest.raises(SandboxError) as exc:
        portal.call("bizproc.event.send", {"event_token": form["event_token"]}, auth=auth)
    assert exc.value.body == fixture("bizproc_event_send_error.json") and exc.value.status == 403


def test_robot_add_validation(portal, receiver, installed):
    auth = installed["auth"]
    with pytest.raises(SandboxError) as exc:
        portal.call("bizproc.robot.add", dict(ROBOT, CODE="", HANDLER=receiver.url + "/r"), auth=auth)
    assert exc.value.body == fixture("bizproc_robot_add_error.json")
    portal.call("bizproc.robot.add", dict(ROBOT, HANDLER=receiver.url + "/r"), auth=auth)
    with pytest.raises(SandboxError) as exc:
        portal.call("bizproc.robot.add", dict(ROBOT, HANDLER=receiver.url + "/r"), auth=auth)
    assert exc.value.code == "ERROR_ACTIVITY_ALREADY_INSTALLED"
    with pytest.raises(SandboxError) as exc:
        portal.call("bizproc.robot.add", dict(ROBOT, CODE="x", HANDLER="https://elsewhere.example/r"), auth=auth)
    assert exc.value.code == "ERROR_WRONG_HANDLER_URL"
    assert portal.call("bizproc.robot.update", {"CODE": "transfer_deal", "FIELDS": {"NAME": "New"}},
                       auth=auth)["result"] is True
    assert portal.call("bizproc.robot.delete", {"CODE": "transfer_deal"}, auth=auth)["result"] is True
    assert portal.call("bizproc.robot.list", auth=auth)["result"] == []


def test_placement_bind_and_open_frame(portal, receiver, installed):
    auth = installed["auth"]
    handler = receiver.url + "/placements/deal_tab"
    assert portal.call("placement.bind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": handler,
                                          "TITLE": "Charts"}, auth=auth)["result"] is True
    got = portal.call("placement.get", auth=auth)["result"]
    assert set(got[0]) == set(fixture("placement_get_response.json")["result"][0])  # langAll keys are languages
    out = portal.open_placement(installed["client_id"], "CRM_DEAL_DETAIL_TAB", {"ID": "8061"})
    assert out["http_status"] == 200
    req = receiver.on("/placements/deal_tab")[0]
    doc = fixture("placement_post_crm_deal_detail_tab.json")
    assert set(req["query"]) | set(req["form"]) == set(doc)
    assert req["form"]["PLACEMENT"] == "CRM_DEAL_DETAIL_TAB"
    assert json.loads(req["form"]["PLACEMENT_OPTIONS"]) == {"ID": "8061"}
    from b24pysdk.credentials.oauth_placement_data import OAuthPlacementData

    parsed = OAuthPlacementData.from_dict({**req["query"], **req["form"]})
    assert parsed.placement_options == {"ID": "8061"} and parsed.member_id == portal.member_id
    assert portal.call("placement.unbind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB"}, auth=auth)["result"] == {"count": 1}


def test_placement_bind_validation_errors_come_with_http_200(portal, handle, installed):
    import requests

    resp = requests.post(f"http://{portal.domain}/rest/placement.bind",
                         json={"HANDLER": "http://127.0.0.1/x", "auth": installed["auth"]}, timeout=10)
    assert resp.status_code == 200 and resp.json() == fixture("placement_bind_error.json")
    with pytest.raises(SandboxError) as exc:
        portal.call("placement.bind", {"PLACEMENT": "NO_SUCH_PLACE", "HANDLER": "http://127.0.0.1/x"},
                    auth=installed["auth"])
    assert exc.value.code == "ERROR_PLACEMENT_NOT_FOUND"
    with pytest.raises(SandboxError) as exc:
        portal.open_placement(installed["client_id"], "CRM_LEAD_DETAIL_TAB")
    assert exc.value.status == 404


def test_open_app_page_is_install_page_until_finished(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/", install_url=receiver.url + "/install")
    portal.install(app["client_id"])
    portal.open_app(app["client_id"])
    assert len(receiver.on("/install")) == 2
    portal.finish_install(app["client_id"])
    portal.open_app(app["client_id"])
    assert receiver.on("/")[0]["form"]["PLACEMENT"] == "DEFAULT"


def test_onuseradd_carries_the_user_fields(portal, receiver, installed):
    bind(portal, installed, receiver, "ONUSERADD")
    user = portal.add_user("Klaus", last_name="Weber", email="klaus@example.com", departments=[1, 2])
    form = receiver.wait("/events")[0]["form"]
    doc = fixture("event_onuseradd.json")
    assert set(form["data"]) == set(doc["data"]) and form["data"]["UF_DEPARTMENT"] == {"0": "1", "1": "2"}
    assert form["data"]["ID"] == user["ID"] and form["auth"]["user_id"] == user["ID"]
    same_keys({k: v for k, v in form.items() if k != "data"}, {k: v for k, v in doc.items() if k != "data"},
              OPTIONAL_AUTH | {"event_handler_id"})
