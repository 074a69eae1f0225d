"""Every documented response fixture of the methods served here has the same keys and value types as
the sandbox's answer to the same call (shared/bitrix24/fixtures). Fixture keys must all be present
in the answer with a compatible type; the sandbox may add keys (the docs trim their examples).
Portal-specific custom-field and parent-link keys (UF_*, PARENT_ID_*) are skipped.
Events, placements, robots, app.* and OAuth fixtures belong to S2's tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "bitrix24" / "fixtures"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/bitrix24/fixtures")

# fixture file -> (method, params, webhook scopes or None for the full hook)
CALLS = {
    "crm_deal_list_response": ("crm.deal.list", {"select": ["ID", "TITLE", "TYPE_ID", "CATEGORY_ID", "STAGE_ID",
                                                            "OPPORTUNITY", "IS_MANUAL_OPPORTUNITY",
                                                            "ASSIGNED_BY_ID", "DATE_CREATE"]}),
    "crm_deal_get_response": ("crm.deal.get", {"id": 1}),
    "crm_deal_add_response": ("crm.deal.add", {"fields": {"TITLE": "fixture"}}),
    "crm_deal_update_response": ("crm.deal.update", {"id": 1, "fields": {"COMMENTS": "x"}}),
    "crm_deal_fields_response": ("crm.deal.fields", {}),
    "crm_deal_list_error": ("crm.deal.list", {"filter": "x"}),
    "crm_deal_userfield_list_response": ("crm.deal.userfield.list", {}),
    "crm_lead_list_response": ("crm.lead.list", {}),
    "crm_lead_get_response": ("crm.lead.get", {"id": 1}),
    "crm_lead_add_response": ("crm.lead.add", {"fields": {"TITLE": "fixture"}}),
    "crm_lead_update_response": ("crm.lead.update", {"id": 1, "fields": {"COMMENTS": "x"}}),
    "crm_lead_fields_response": ("crm.lead.fields", {}),
    "crm_contact_list_response": ("crm.contact.list", {"select": ["ID", "NAME", "LAST_NAME", "EXPORT",
                                                                  "ASSIGNED_BY_ID", "DATE_CREATE", "EMAIL"],
                                                       "filter": {"HAS_EMAIL": "Y"}}),
    "crm_contact_get_response": ("crm.contact.get", {"id": 1}),
    "crm_contact_add_response": ("crm.contact.add", {"fields": {"NAME": "fixture"}}),
    "crm_contact_update_response": ("crm.contact.update", {"id": 1, "fields": {"COMMENTS": "x"}}),
    "crm_contact_fields_response": ("crm.contact.fields", {}),
    "crm_company_list_response": ("crm.company.list", {"select": ["TITLE", "ASSIGNED_BY_ID", "ID", "PHONE"]}),
    "crm_company_get_response": ("crm.company.get", {"id": 1}),
    "crm_company_add_response": ("crm.company.add", {"fields": {"TITLE": "fixture"}}),
    "crm_company_update_response": ("crm.company.update", {"id": 1, "fields": {"COMMENTS": "x"}}),
    "crm_company_fields_response": ("crm.company.fields", {}),
    "crm_item_list_response": ("crm.item.list", {"entityTypeId": 1, "select": [
        "id", "title", "lastName", "name", "stageId", "sourceId", "assignedById", "opportunity",
        "isManualOpportunity"]}),
    "crm_item_get_response": ("crm.item.get", {"entityTypeId": 1, "id": 1}),
    "crm_item_add_response": ("crm.item.add", {"entityTypeId": 2, "fields": {"title": "fixture",
                                                                             "contactIds": [1, 2]}}),
    "crm_item_update_response": ("crm.item.update", {"entityTypeId": 2, "id": 2, "fields": {"title": "x"}}),
    "crm_item_fields_response": ("crm.item.fields", {"entityTypeId": 128}),
    "crm_item_list_error": ("crm.item.list", {"entityTypeId": 2, "filter": {"FIELD": 1}}),
    "crm_category_list_response": ("crm.category.list", {"entityTypeId": 2}),
    "crm_category_list_error": ("crm.category.list", {"entityTypeId": 9999}),
    "crm_status_list_response": ("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}}),
    "crm_status_entity_types_response": ("crm.status.entity.types", {}),
    "department_get_response": ("department.get", {"PARENT": 1}),
    "profile_response": ("profile", {}),
    "scope_response": ("scope", {}),
    "user_current_response": ("user.current", {}),
    "user_current_webhook_response": ("user.current", {}),
    "user_get_response": ("user.get", {}),
    "batch_response": ("batch", {"halt": 0, "cmd": {
        "get_user": "user.current", "get_department": "department.get?ID=$result[get_user][UF_DEPARTMENT][0]"}}),
    "batch_error_halt0": ("batch", {"halt": 0, "cmd": {"get_user": "user.current",
                                                       "get_department": "department.get"}}, ["crm"]),
    "batch_error_halt1": ("batch", {"halt": 1, "cmd": {"get_user": "user.current",
                                                       "get_department": "department.get"}}, ["crm"]),
    "time_object": ("server.time", {}),
    "response_time_with_operating": ("server.time", {}),
}

# fixtures without a literal body: the documented status and code, produced by `make` in the test
DOCUMENTED_ERRORS = ["error_expired_token", "error_no_auth_found", "error_insufficient_scope",
                     "error_query_limit", "error_operation_time_limit"]
SKIP_PREFIXES = ("UF_", "PARENT_ID_", "ufCrm", "parentId")


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def assert_same_shape(expected, actual, path="$", keys=("USER_TYPE_ID", "ENTITY_ID")):
    """Every key of `expected` is in `actual` with a compatible type (None is compatible with anything)."""
    if expected is None or actual is None:
        return
    if expected in ({}, []):
        return  # an empty placeholder (PHP prints empty collections as []; user.get's docs show {} dates)
    assert _kind(expected) == _kind(actual), f"{path}: {_kind(expected)} expected, got {_kind(actual)} ({actual!r})"
    if isinstance(expected, dict):
        for k, v in expected.items():
            if str(k).startswith(SKIP_PREFIXES):
                continue
            assert k in actual, f"{path}: key {k!r} missing (has {sorted(actual)[:60]})"
            assert_same_shape(v, actual[k], f"{path}.{k}", keys)
    elif isinstance(expected, list) and expected and actual:
        for i, item in enumerate(expected):
            match = _counterpart(item, actual, keys)
            if match is not None:
                assert_same_shape(item, match, f"{path}[{i}]", keys)


def _counterpart(item, actual: list, keys):
    """The element of `actual` comparable with `item`: same USER_TYPE_ID/ENTITY_ID when lists mix kinds.

    None when the sandbox has no element of that kind (e.g. the docs' app-registered `resourcebooking`).
    """
    if isinstance(item, dict):
        for key in keys:
            if key in item:
                return next((a for a in actual if isinstance(a, dict) and a.get(key) == item[key]), None)
    return actual[0]


def _load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_response_fixture_matches(name, portal, hook_url):
    method, params, *scopes = CALLS[name]
    url = portal.webhook_url(portal.add_webhook(1, scopes[0])) if scopes else hook_url
    fx = _load(name)
    r = requests.post(url + method, json=params, timeout=30)
    want_status = (fx.get("http") or {}).get("status", 200)
    if isinstance(want_status, int):
        assert r.status_code == want_status
    example = fx["example"]
    if name in ("time_object", "response_time_with_operating"):
        example = {"time": example["time"]}
    keys = ("ID",) if name == "crm_status_entity_types_response" else ("USER_TYPE_ID", "ENTITY_ID")
    assert_same_shape(example, r.json(), keys=keys)


def test_every_fixture_of_these_methods_is_walked():
    ours = ("crm_", "user_", "department_", "profile_", "scope_", "batch_", "time_object", "response_time")
    files = {p.stem for p in FIXTURES.glob("*.json")}
    response_files = {f for f in files if f.startswith(ours) and not f.startswith("crm_contact_update_multifield")
                      and f != "batch_errors_table"}
    assert response_files <= set(CALLS), sorted(response_files - set(CALLS))


@pytest.mark.parametrize("name", DOCUMENTED_ERRORS)
def test_documented_error_rows(name, fresh_sandbox):
    row = _load(name)["documented_row"]
    h = fresh_sandbox(limits="standard", operating_limit=0.001)
    portal = h.portal
    base = f"http://{portal.domain}/rest/"
    hook = portal.webhook_url(portal.add_webhook(1, ["crm"]))
    if name == "error_expired_token":
        access, _ = h.sandbox.issue_tokens(portal, "local.fx", 1, ["crm"])
        access.expires_at = 0
        r = requests.post(base + "crm.deal.get", json={"id": 1, "auth": access.token}, timeout=10)
    elif name == "error_no_auth_found":
        r = requests.post(base + "crm.deal.get", json={"id": 1, "auth": "unknown"}, timeout=10)
    elif name == "error_insufficient_scope":
        r = requests.post(hook + "user.get", json={}, timeout=10)
    elif name == "error_query_limit":
        portal.limiter._level = portal.limiter.threshold
        r = requests.post(hook + "crm.deal.get", json={"id": 1}, timeout=10)
    else:
        requests.post(hook + "crm.deal.list", json={}, timeout=10)
        r = requests.post(hook + "crm.deal.list", json={}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (row["http_status"], row["error"])
    assert set(r.json()) >= {"error", "error_description"}
