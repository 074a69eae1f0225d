"""Install, update and uninstall as the portal performs them; shapes compared with the documented fixtures."""
from __future__ import annotations

import pytest

from sandbox import SandboxError
from tests.sandbox.helpers_s2 import fixture, handle, installed, portal, receiver  # noqa: F401

OPTIONAL_AUTH = {"expires", "user_id", "refresh_token"}  # sent for b24pysdk's parsers (PROTOCOL.md §11.6)


def assert_keys_like(got: dict, documented: dict, extra: set = frozenset(), path: str = "") -> None:
    """Every documented key is present (recursively); ours adds nothing but `extra`."""
    for key, value in documented.items():
        assert key in got, f"{path}{key} missing"
        if isinstance(value, dict) and value:
            assert isinstance(got[key], dict), f"{path}{key} should be nested"
            assert_keys_like(got[key], value, extra, f"{path}{key}.")
        elif not isinstance(value, (dict, list)):
            assert isinstance(got[key], str), f"{path}{key}: a form POST carries strings"
    assert set(got) - set(documented) <= set(extra), f"{path}: unexpected {set(got) - set(documented)}"


def test_install_frame_post_matches_fixture(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/", install_url=receiver.url + "/install",
                              scopes=["crm", "placement"])
    out = portal.install(app["client_id"])
    req = receiver.on("/install")[0]
    doc = fixture("install_post.json")
    query_keys = {"DOMAIN", "PROTOCOL", "LANG", "APP_SID"}
    assert set(req["query"]) == query_keys
    assert set(req["form"]) == set(doc) - query_keys
    assert req["content_type"].startswith("application/x-www-form-urlencoded")
    form = req["form"]
    assert form["PLACEMENT"] == "DEFAULT" and form["member_id"] == portal.member_id
    assert form["APPLICATION_TOKEN"] == out["installation"]["application_token"]
    assert form["APPLICATION_SCOPE"] == "crm,placement" and form["status"] == "L"
    assert req["query"]["DOMAIN"] == portal.domain and req["query"]["PROTOCOL"] == "0"
    # the frame's token works against the portal
    assert portal.call("app.info", auth=form["AUTH_ID"])["result"]["INSTALLED"] is False
    portal.finish_install(app["client_id"])
    assert portal.call("app.info", auth=form["AUTH_ID"])["result"]["INSTALLED"] is True


def test_app_without_ui_gets_onappinstall_and_is_finished(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/", scopes=["crm"])
    out = portal.install(app["client_id"])
    assert out["installation"]["installed"] is True
    req = receiver.wait("/")[0]
    doc = fixture("onappinstall_event.json")
    assert_keys_like(req["form"], doc, extra=OPTIONAL_AUTH)
    form = req["form"]
    assert form["event"] == "ONAPPINSTALL" and form["data"]["INSTALLED"] == "Y"
    assert form["auth"]["application_token"] == out["installation"]["application_token"]
    assert form["auth"]["member_id"] == portal.member_id
    assert portal.call("profile", auth=form["auth"]["access_token"])["result"]["ADMIN"] is True


def test_install_with_event_mode_posts_onappinstall_to_install_url(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/", install_url=receiver.url + "/install")
    portal.install(app["client_id"], mode="event")
    assert receiver.wait("/install")[0]["form"]["event"] == "ONAPPINSTALL"


def test_update_sends_new_application_token(portal, receiver, installed):
    cid, auth = installed["client_id"], installed["auth"]
    portal.call("event.bind", {"event": "ONAPPUPDATE", "handler": receiver.url + "/events"}, auth=auth)
    before = portal.installation(cid)["application_token"]
    portal.update_app(cid)
    req = receiver.wait("/events")[0]
    assert_keys_like(req["form"], fixture("onappupdate_event.json"), extra=OPTIONAL_AUTH | {"event_handler_id"})
    assert req["form"]["auth"]["application_token"] != before
    assert req["form"]["auth"]["application_token"] == portal.installation(cid)["application_token"]
    assert req["form"]["data"]["VERSION"] == "2" and req["form"]["data"]["PREVIOUS_VERSION"] == "1"


def test_uninstall_sends_no_tokens_and_kills_every_token(handle, portal, receiver, installed):
    cid, auth = installed["client_id"], installed["auth"]
    portal.call("event.bind", {"event": "ONAPPUNINSTALL", "handler": receiver.url + "/events"}, auth=auth)
    token = installed["tokens"]
    portal.uninstall(cid, clean=False)
    req = receiver.wait("/events")[0]
    assert_keys_like(req["form"], fixture("onappuninstall_event.json"), extra={"event_handler_id"})
    assert "access_token" not in req["form"]["auth"] and req["form"]["data"]["CLEAN"] == "0"
    with pytest.raises(SandboxError) as exc:
        portal.call("app.info", auth=auth)
    assert exc.value.status == 401
    import requests

    refresh = requests.get(handle.base_url + "/oauth/oauth/token/", timeout=10, params={
        "grant_type": "refresh_token", "client_id": cid, "client_secret": installed["app"]["client_secret"],
        "refresh_token": token["refresh_token"]})
    assert refresh.json()["error"] == "invalid_grant"
    with pytest.raises(SandboxError) as exc:
        portal.installation(cid)
    assert exc.value.code == "NOT_INSTALLED"


def test_app_options_and_app_info(portal, installed):
    auth = installed["auth"]
    assert portal.call("app.option.set", {"options": {"data": "value", "n": 2}}, auth=auth)["result"] is True
    assert portal.call("app.option.get", {"option": "data"}, auth=auth)["result"] == "value"
    assert portal.call("app.option.get", {"option": "nope"}, auth=auth)["result"] is None
    assert portal.call("app.option.get", auth=auth)["result"] == {"data": "value", "n": 2}
    with pytest.raises(SandboxError) as exc:
        portal.call("app.option.set", {"options": {}}, auth=auth)
    assert (exc.value.status, exc.value.code) == (400, "ArgumentNullException")
    info = portal.call("app.info", auth=auth)["result"]
    documented = fixture("app_info_response.json")["result"]
    assert set(info) == set(documented)
    hook = portal.create_webhook(scopes=["crm"])
    with pytest.raises(SandboxError) as exc:
        portal.call("app.info", webhook=hook["url"])
    assert exc.value.body == fixture("app_info_error.json") and exc.value.status == 400


def test_admin_api_bad_input_is_4xx_json(handle):
    import requests

    base = handle.base_url + "/sandbox/"
    assert requests.post(base + "nope", json={}, timeout=10).status_code == 404
    r = requests.post(base + "install", json={"client_id": "missing"}, timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "APP_NOT_FOUND"
    r = requests.post(base + "install", data="not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(base + "register_app", json={"bogus": 1}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "ERROR_ARGUMENT"
    r = requests.post(base + "set_delivery_faults", json={"drop_share": 7}, timeout=10)
    assert r.status_code == 400


def test_in_process_transport_matches_http(handle, receiver):
    """`Portal(sandbox)` drives the same sandbox without sockets and answers like `Portal(url)`."""
    from sandbox import Portal

    local, remote = Portal(handle.sandbox), Portal(handle.base_url)
    assert local.member_id == remote.member_id and local.info() == remote.info()
    app = local.register_app(handler_url=receiver.url + "/", install_url=receiver.url + "/install", scopes=["crm"])
    local.install(app["client_id"])
    local.finish_install(app["client_id"])
    assert remote.installation(app["client_id"]) == local.installation(app["client_id"])
    auth = local.issue_tokens(app["client_id"])["access_token"]
    assert local.call("app.info", auth=auth)["result"] == remote.call("app.info", auth=auth)["result"]
    with pytest.raises(SandboxError) as exc:
        local.installation("missing")
    assert exc.value.status == 400 and exc.value.code == "NOT_INSTALLED"
