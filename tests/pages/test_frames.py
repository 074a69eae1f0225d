"""Frame pages as Bitrix24 opens them: who the user is (profile with AUTH_ID), settings for admins only."""
from __future__ import annotations

import re

from tests.lifecycle.conftest import post_form
from tests.lifecycle.test_frames import frame_body


def token_of(html: str) -> str:
    return re.search(r'frameToken:\s*"([^"]+)"', html).group(1)


def session(client, html: str) -> dict:
    return client.get("/api/v1/frame/session", headers={"Authorization": f"Bearer {token_of(html)}"}).json


def test_settings_open_for_an_administrator_with_admin_claim(installed, client):
    out = installed["portal"].open_placement(installed["client_id"], "REST_APP_URI", {}, user_id=1)
    html = out["response"]
    assert out["http_status"] == 200 and 'id="ai-settings"' in html and "Only administrators" not in html
    assert session(client, html)["user_id"] == 1
    assert client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token_of(html)}"}).status_code == 200


def test_settings_refuse_a_non_administrator(installed, client):
    out = installed["portal"].open_placement(installed["client_id"], "REST_APP_URI", {}, user_id=3)
    html = out["response"]
    assert "Only administrators can open Hub24 settings" in html and 'id="ai-settings"' not in html
    assert session(client, html)["user_id"] == 3
    assert client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token_of(html)}"}).status_code == 403


def test_unverifiable_user_is_not_an_administrator(installed, client):
    query, body = frame_body(installed, "placement_post_rest_app_uri.json")  # AUTH_ID of the docs' example
    html = post_form(client, "/placements/settings", body, query).get_data(as_text=True)
    assert "Only administrators" in html and session(client, html)["user_id"] is None


def test_dashboard_page_says_ai_is_off_without_a_key(installed, client):
    out = installed["portal"].open_placement(installed["client_id"], "LEFT_MENU", {}, user_id=3)
    assert out["http_status"] == 200 and 'data-ai-configured="no"' in out["response"]
    assert "<title>Hub24 dashboards</title>" in out["response"]


def test_deal_tab_before_the_first_sync(installed):
    out = installed["portal"].open_placement(installed["client_id"], "CRM_DEAL_DETAIL_TAB", {"ID": "7"})
    assert out["http_status"] == 200 and "not mirrored this portal's deals yet" in out["response"]
    assert "deal 7" in out["response"]


def test_deal_tab_bad_id_is_a_400(installed, client):
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json")
    body["PLACEMENT_OPTIONS"] = '{"ID":"7; DROP TABLE deals"}'
    resp = post_form(client, "/placements/deal_tab", body, query)
    assert resp.status_code == 400 and "numeric id" in resp.get_data(as_text=True)
