"""`flask portal connect URL` (incoming webhook), its refusals, and `flask doctor`."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.bitrix.errors import NotAvailableForWebhook
from app.bitrix.reconcile import reconcile
from app.models import ConnectionKind, Portal
from tests.lifecycle.conftest import fixture, post_form

SCOPES = ["crm", "user", "department", "placement", "bizproc"]


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _portals(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Portal))


def _hook(hub, scopes=SCOPES) -> str:
    return hub["portal"].create_webhook(user_id=1, scopes=scopes)["url"]


def test_connect_webhook_stores_portal_and_refuses_app_features(hub, app, db, client):
    url, before = _hook(hub), _portals(db)
    result = _cli(app, "portal", "connect", url)
    assert result.exit_code == 0, result.output
    assert "connected portal" in result.output and "need Hub24 installed as an app" in result.output
    db.expire_all()
    row = db.scalar(select(Portal).where(Portal.connection_kind == ConnectionKind.webhook))
    assert row.domain == hub["portal"].domain and row.webhook_url == url.rstrip("/") + "/"
    assert set(SCOPES) <= set(row.scopes)
    with pytest.raises(NotAvailableForWebhook, match="incoming webhook"):
        reconcile(row.id)
    refused = _cli(app, "portal", "reconcile", str(row.id))
    assert refused.exit_code != 0 and "need Hub24 installed as an application" in refused.output
    body = fixture("event_oncrmdealadd_app.json")
    body["auth"]["member_id"] = row.member_id
    resp = post_form(client, "/events", body)
    assert resp.status_code in (401, 403)
    again = _cli(app, "portal", "connect", url)  # connecting again updates the same row
    assert again.exit_code == 0 and "updated portal" in again.output
    assert _portals(db) == before + 1


@pytest.mark.parametrize("bad, words", [
    ("ftp://x/rest/1/abcdefgh/", "https://"),
    ("http://127.0.0.1:1/rest/abc/", "incoming-webhook URL"),
    ("not a url", "https://"),
])
def test_connect_refuses_malformed_urls(hub, app, db, bad, words):
    before = _portals(db)
    result = _cli(app, "portal", "connect", bad)
    assert result.exit_code != 0 and words in result.output
    assert _portals(db) == before


def test_connect_refuses_a_webhook_the_portal_rejects(hub, app, db):
    url, before = _hook(hub), _portals(db)
    wrong = url.rstrip("/")[:-3] + "zzz/"
    result = _cli(app, "portal", "connect", wrong)
    assert result.exit_code != 0 and "did not accept" in result.output
    assert _portals(db) == before


def test_doctor_on_installed_portal(installed, app, client):
    from app.bitrix.client import client_for

    client.post("/install/finish", headers={"Authorization": f"Bearer {installed['frame_token']}"})
    client_for(installed["row_id"]).limiter.reset()  # a quiet portal: the install's burst has drained
    result = _cli(app, "doctor", str(installed["row_id"]))
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    for check in ("reachable", "auth", "scopes", "installation", "handlers", "rate", "entities"):
        assert any(line.startswith(f"ok   {check}:") for line in lines), (check, result.output)
    assert "deals" in result.output


def test_doctor_reports_a_spent_rate_budget(installed, app):
    from app.bitrix.client import client_for

    client_for(installed["row_id"]).limiter.fill()
    result = _cli(app, "doctor", str(installed["row_id"]))
    assert result.exit_code == 1 and "FAIL rate:" in result.output and "spread the load" in result.output


def test_doctor_names_each_problem_with_what_to_do(hub, app, db):
    from app.bitrix.client import client_for

    portal = hub["portal"]
    assert portal.install(hub["client_id"], mode="frame")["delivery"]["http_status"] == 200  # installFinish not called
    row = db.scalar(select(Portal).where(Portal.member_id == portal.member_id))
    client_for(row.id).call("bizproc.robot.delete", {"CODE": "hub24_alma_push"})
    result = _cli(app, "doctor", portal.member_id)
    assert result.exit_code == 1
    assert "FAIL handlers: not in line with manifest.json (robot hub24_alma_push): run `flask portal reconcile" \
        in result.output
    assert "FAIL installation: installation not finished" in result.output  # installFinish never called here


def test_doctor_on_webhook_with_missing_scope(hub, app):
    url = _hook(hub, scopes=["crm", "user"])
    assert _cli(app, "portal", "connect", url).exit_code == 0
    result = _cli(app, "doctor", hub["portal"].domain)
    assert result.exit_code == 1
    assert "FAIL scopes: missing scope department, placement, bizproc" in result.output
    assert "not available on a webhook connection" in result.output


def test_doctor_unknown_portal(app, hub):
    result = _cli(app, "doctor", "nope")
    assert result.exit_code != 0 and "no portal" in result.output
