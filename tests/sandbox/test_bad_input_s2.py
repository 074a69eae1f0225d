"""Malformed input to the OAuth server, the admin API and S2's REST methods: Bitrix24 errors, never 500."""
from __future__ import annotations

import pytest
import requests

from sandbox import SandboxError
from sandbox.lifecycle import events  # noqa: F401  (methods registered)
from sandbox.registry import METHODS
from tests.sandbox.helpers_s2 import handle, installed, portal, receiver  # noqa: F401

S2_METHODS = sorted(m for m in METHODS if m.split(".")[0] in ("event", "placement", "bizproc", "app"))
GARBAGE = [{"event": ["x"], "handler": {"a": 1}, "PLACEMENT": 5, "HANDLER": [1], "CODE": {"x": 1},
            "FIELDS": "str", "options": "x", "option": ["a"], "filter": "bad", "order": ["x"], "limit": "many",
            "clear": "maybe", "process_id": {"a": 1}, "message_id": 3, "EVENT_TOKEN": ["x"],
            "RETURN_VALUES": "x", "auth_type": "admin", "start": "x", "PROPERTIES": "x", "USE_SUBSCRIPTION": 5},
           {"filter": {">ID": "abc", "NOPE": 1}, "CODE": "a b", "HANDLER": "javascript:alert(1)",
            "NAME": "n", "event": "ONCRMDEALADD", "handler": "not a url", "FIELDS": {"HANDLER": ""}}]


@pytest.mark.parametrize("method", S2_METHODS)
def test_garbage_params_get_4xx_or_200_error_never_500(portal, installed, method):
    for params in GARBAGE:
        try:
            portal.call(method, params, auth=installed["auth"])
        except SandboxError as exc:
            assert 200 <= exc.status < 500, (method, exc.status, exc.body)
            assert exc.code is not None and exc.description is not None


def test_oauth_garbage(handle):
    base = handle.base_url + "/oauth"
    for params in ({"grant_type": "refresh_token", "client_id": ["a"]}, {"code": "x" * 5000},
                   {"grant_type": "authorization_code", "client_id": "x", "client_secret": "y", "code": ""}):
        r = requests.post(base + "/oauth/token/", data=params, timeout=10)
        assert 400 <= r.status_code < 500 and "error" in r.json()
    r = requests.post(base + "/rest/app.info", json=["not", "an", "object"], timeout=10)
    assert r.status_code == 401
    r = requests.get(handle.base_url + "/oauth/authorize/", params={"client_id": "nope", "user_id": "x"}, timeout=10)
    assert r.status_code == 400


def test_admin_garbage(handle, installed):
    base = handle.base_url + "/sandbox/"
    for name, body in [("move_deal", {"deal_id": "abc", "stage_id": "X"}), ("move_deal", {"deal_id": 999999,
                       "stage_id": "NEW"}), ("open_placement", {"client_id": installed["client_id"],
                       "placement": "CRM_DEAL_DETAIL_TAB", "user_id": "x"}), ("add_rule", {"stage_id": "X",
                       "robot_code": "y", "properties": "z"}), ("uninstall", {"client_id": "nope"}),
                       ("create_portal", {"plan": "gold"}), ("install", {"client_id": installed["client_id"]})]:
        r = requests.post(base + name, json=body, timeout=10)
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        assert "error" in r.json() and r.json()["error_description"]
