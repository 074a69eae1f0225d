"""App page and placement frames: verification, frame tokens, framing headers."""
from __future__ import annotations

import re
import time

import pytest

from app.bitrix.verify import issue_frame_token
from app.models import Portal
from tests.lifecycle.conftest import fixture, post_form

PAGES = [("/placements/deal_tab", "placement_post_crm_deal_detail_tab.json"),
         ("/placements/left_menu", "placement_post_left_menu.json"),
         ("/placements/settings", "placement_post_rest_app_uri.json"),
         ("/", "install_post.json")]


def frame_body(installed, name: str, *, with_app_token: bool = True, auth_id: str | None = None) -> tuple[dict, dict]:
    """A documented frame POST with this portal's values; returns (query, body)."""
    body = dict(fixture(name))
    portal = installed["portal"]
    query = {k: body.pop(k) for k in ("DOMAIN", "PROTOCOL", "LANG", "APP_SID")}
    query["DOMAIN"], query["PROTOCOL"] = portal.domain, "0"
    body["member_id"] = portal.member_id
    if with_app_token:
        body["APPLICATION_TOKEN"] = portal.installation(installed["client_id"])["application_token"]
    else:
        body.pop("APPLICATION_TOKEN", None)
    if auth_id is not None:
        body["AUTH_ID"] = auth_id
    return query, body


def token_of(html: str) -> str:
    return re.search(r'frameToken:\s*"([^"]+)"', html).group(1)


@pytest.mark.parametrize("path, name", PAGES)
def test_documented_frame_posts_open_with_csp_and_token(installed, client, path, name):
    client.post("/install/finish", headers={"Authorization": f"Bearer {installed['frame_token']}"})
    query, body = frame_body(installed, name)
    resp = post_form(client, path, body, query)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    domain = installed["portal"].domain
    assert resp.headers["Content-Security-Policy"] == f"frame-ancestors 'self' http://{domain}"
    assert "X-Frame-Options" not in resp.headers
    html = resp.get_data(as_text=True)
    session = client.get("/api/v1/frame/session", headers={"Authorization": f"Bearer {token_of(html)}"})
    assert session.status_code == 200
    assert session.json["member_id"] == installed["portal"].member_id
    assert session.json["placement"] == body["PLACEMENT"]


def test_sandbox_opens_deal_tab(installed, db):
    portal = installed["portal"]
    out = portal.open_placement(installed["client_id"], "CRM_DEAL_DETAIL_TAB", {"ID": "5"})
    assert out["http_status"] == 200 and "deal 5" in out["response"]


def test_app_page_while_installing_shows_install_page(installed, client):
    query, body = frame_body(installed, "install_post.json")
    html = post_form(client, "/", body, query).get_data(as_text=True)
    assert "installFinish" in html


def test_wrong_application_token_refused(installed, client):
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json")
    body["APPLICATION_TOKEN"] = "f" * 32
    resp = post_form(client, "/placements/deal_tab", body, query)
    assert resp.status_code == 401 and "could not verify" in resp.get_data(as_text=True)
    assert "frameToken" not in resp.get_data(as_text=True)


def test_without_application_token_auth_id_is_checked_with_oauth_server(installed, client):
    portal = installed["portal"]
    good = portal.issue_tokens(installed["client_id"])["access_token"]
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json", with_app_token=False, auth_id=good)
    assert post_form(client, "/placements/deal_tab", body, query).status_code == 200
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json", with_app_token=False,
                             auth_id="a" * 40)
    assert post_form(client, "/placements/deal_tab", body, query).status_code == 401
    other = portal.register_app(name="Other", handler_url="http://127.0.0.1:9/", scopes=["crm"])
    portal.install(other["client_id"], mode="event")
    foreign = portal.issue_tokens(other["client_id"])["access_token"]  # a real token, of another app
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json", with_app_token=False,
                             auth_id=foreign)
    assert post_form(client, "/placements/deal_tab", body, query).status_code == 401
    portal.uninstall(other["client_id"])


def test_frame_token_forged_expired_or_for_gone_portal(installed, client, app, db):
    portal = db.get(Portal, installed["row_id"])
    assert client.get("/api/v1/frame/session").status_code == 401
    assert client.get("/api/v1/frame/session", headers={"Authorization": "Bearer abc.def.ghi"}).status_code == 401
    expired = issue_frame_token(portal, "DEFAULT", ttl=-10)
    assert client.get("/api/v1/frame/session", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    other_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret-key-" + "y" * 32
    forged = issue_frame_token(portal, "DEFAULT")
    app.config["SECRET_KEY"] = other_key
    assert client.get("/api/v1/frame/session", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    good = issue_frame_token(portal, "DEFAULT")
    assert client.get("/api/v1/frame/session", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert int(time.time()) < client.get("/api/v1/frame/session",
                                         headers={"Authorization": f"Bearer {good}"}).json["expires_at"]


def test_unknown_placement_page_is_404(installed, client):
    query, body = frame_body(installed, "placement_post_crm_deal_detail_tab.json")
    assert post_form(client, "/placements/nope", body, query).status_code == 404
    resp = post_form(client, "/placements/left_menu", body, query)  # a deal-tab POST at the left-menu page
    assert resp.status_code == 400
