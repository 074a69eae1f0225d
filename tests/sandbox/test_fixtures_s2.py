"""Walk the documented fixtures of the methods S2 owns: same keys and value types as the sandbox's answers."""
from __future__ import annotations

import pytest

from sandbox import SandboxError
from tests.sandbox.helpers_s2 import fixture, handle, installed, portal, receiver  # noqa: F401

# EVENT_DATA/EVENT_ADDITIONAL: the only documented example shows `false`; the sandbox carries the ids
# ({"FIELDS": {"ID": ...}}) because an offline queue without them is useless (README, differences).
LOOSE = {"EVENT_DATA", "EVENT_ADDITIONAL", "langAll"}  # langAll is keyed by language codes


def like(got, doc, path="result"):
    """Same keys (recursively) and JSON types; documented nulls accept any value."""
    if doc is None or path.rsplit(".", 1)[-1] in LOOSE:
        return
    if isinstance(doc, bool) or isinstance(got, bool):
        assert isinstance(got, bool) and isinstance(doc, bool), path
    elif isinstance(doc, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), path
    elif isinstance(doc, dict):
        assert isinstance(got, dict), path
        assert set(got) == set(doc), (path, set(got) ^ set(doc))
        for k in doc:
            like(got[k], doc[k], f"{path}.{k}")
    elif isinstance(doc, list):
        assert isinstance(got, list), path
        if doc and got:
            like(got[0], doc[0], f"{path}[0]")
    else:
        assert type(got) is type(doc), path


def check_envelope(got: dict, doc: dict) -> None:
    assert set(doc) - {"time"} <= set(got) and "time" in got
    assert set(doc["time"]) <= set(got["time"]) | {"operating_reset_at"}
    like(got["result"], doc["result"])


@pytest.fixture()
def ready(portal, receiver, installed):
    auth = installed["auth"]
    call = lambda m, p=None: portal.call(m, p, auth=auth)  # noqa: E731
    call("event.bind", {"event": "ONCRMLEADADD", "handler": receiver.url + "/h"})
    call("event.bind", {"event": "ONCRMLEADADD", "event_type": "offline"})
    call("placement.bind", {"PLACEMENT": "CRM_DEAL_LIST_TOOLBAR", "HANDLER": receiver.url + "/p", "TITLE": "t"})
    call("app.option.set", {"options": {"data": "value", "data2": "value2"}})
    call("crm.lead.add", {"fields": {"TITLE": "lead"}})
    call("crm.lead.add", {"fields": {"TITLE": "lead 2"}})
    return call


CASES = [
    ("app_info_response.json", "app.info", None),
    ("app_option_get_all_response.json", "app.option.get", None),
    ("app_option_get_one_response.json", "app.option.get", {"option": "data"}),
    ("app_option_set_response.json", "app.option.set", {"options": {"x": "1"}}),
    ("event_get_response.json", "event.get", None),
    ("event_offline_list_response.json", "event.offline.list", None),
    ("event_offline_get_response.json", "event.offline.get", None),
    ("placement_get_response.json", "placement.get", None),
    ("placement_list_response.json", "placement.list", None),
    ("bizproc_robot_list_response.json", "bizproc.robot.list", None),
]


@pytest.mark.parametrize("name, method, params", CASES)
def test_response_fixtures(ready, name, method, params):
    doc = fixture(name)
    got = ready(method, params)
    check_envelope(got, doc)


def test_mutating_response_fixtures(ready, receiver):
    check_envelope(ready("event.bind", {"event": "ONCRMDEALADD", "handler": receiver.url + "/h"}),
             fixture("event_bind_response.json"))
    check_envelope(ready("event.unbind", {"event": "ONCRMDEALADD", "handler": receiver.url + "/h"}),
             fixture("event_unbind_response.json"))
    check_envelope(ready("placement.bind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": receiver.url + "/t"}),
             fixture("placement_bind_response.json"))
    robot = {"CODE": "test_robot", "HANDLER": receiver.url + "/robot", "NAME": "Send"}
    check_envelope(ready("bizproc.robot.add", robot), fixture("bizproc_robot_add_response.json"))
    check_envelope(ready("bizproc.robot.update", {"CODE": "test_robot", "FIELDS": {"NAME": "x"}}),
             fixture("bizproc_robot_update_response.json"))
    check_envelope(ready("bizproc.robot.delete", {"CODE": "test_robot"}), fixture("bizproc_robot_delete_response.json"))
    reserved = ready("event.offline.get", {"clear": 0})["result"]
    check_envelope(ready("event.offline.error", {"process_id": reserved["process_id"],
                                           "message_id": [reserved["events"][0]["MESSAGE_ID"]]}),
             fixture("event_offline_error_response.json"))
    check_envelope(ready("event.offline.clear", {"process_id": reserved["process_id"]}),
             fixture("event_offline_clear_response.json"))


def test_error_fixtures(portal, installed, receiver):
    user3 = portal.issue_tokens(installed["client_id"], user_id=3)["access_token"]
    hook = portal.create_webhook(scopes=["crm"])["url"]
    cases = [
        ("event_unbind_error.json", "event.unbind", {"event": "ONCRMLEADADD", "event_type": "offline"}, user3, 403),
        ("event_offline_get_error.json", "event.offline.get", {}, user3, 403),
        ("app_option_set_error.json", "app.option.set", {"options": {}}, installed["auth"], 400),
        ("app_option_get_error.json", "app.option.get", {}, None, 400),
        ("bizproc_event_send_error.json", "bizproc.event.send", {"event_token": "x|y|z"}, installed["auth"], 403),
    ]
    for name, method, params, auth, status in cases:
        with pytest.raises(SandboxError) as exc:
            portal.call(method, params, auth=auth) if auth else portal.call(method, params, webhook=hook)
        assert exc.value.status == status, name
        assert exc.value.body == fixture(name), name
