"""Install (both documented shapes), reconcile, finish, update, uninstall and reinstall, against the sandbox."""
from __future__ import annotations

from sqlalchemy import select, text

from app.bitrix.reconcile import reconcile
from app.manifest import load_manifest
from app.models import Portal, PortalStatus, PortalToken
from tests.lifecycle.conftest import fixture, run_jobs


def _row(db, member_id: str) -> Portal:
    db.expire_all()
    return db.scalar(select(Portal).where(Portal.member_id == member_id))


def test_install_page_stores_portal_and_registers_manifest(installed, db):
    portal = installed["portal"]
    row = _row(db, portal.member_id)
    inst = portal.installation(installed["client_id"])
    assert row.status == PortalStatus.installing  # the page has not told us installFinish yet
    assert row.application_token == inst["application_token"]
    assert row.domain == portal.domain and row.client_endpoint.endswith("/rest/")
    assert set(row.scopes) >= {"crm", "placement", "bizproc"}
    assert row.token.access_token and row.token.refresh_token
    raw = db.execute(text("SELECT application_token FROM portals WHERE id = :i"), {"i": row.id}).scalar()
    assert raw != inst["application_token"]  # encrypted at rest
    manifest = load_manifest()
    base = installed["base"]
    online = {(h["event"], h["handler"]) for h in inst["handlers"] if not h["offline"]}
    assert online == {(e["event"], base + e["handler"]) for e in manifest["events"]}
    assert {(p["placement"], p["handler"]) for p in inst["placements"]} == \
        {(p["placement"], base + p["handler"]) for p in manifest["placements"]}
    assert set(inst["robots"]) == {r["code"] for r in manifest["robots"]}
    robot = inst["robots"]["hub24_deal_transfer"]
    assert robot["handler"] == base + "/robots/hub24_deal_transfer" and "partner" in robot["properties"]
    assert "installFinish" in installed["install_response"] and "b24jssdk.min.js" in installed["install_response"]


def test_reconcile_second_run_binds_nothing(installed, db):
    report = reconcile(installed["row_id"])
    assert not report.changed, report.as_dict()


def test_reconcile_restores_removed_and_drops_stale(installed, db):
    portal, cid = installed["portal"], installed["client_id"]
    from app.bitrix.client import client_for

    c = client_for(installed["row_id"])
    c.call("event.unbind", {"event": "ONCRMDEALADD", "handler": installed["base"] + "/events"})
    c.call("event.bind", {"event": "ONCRMLEADADD", "handler": installed["base"] + "/old-events"})
    c.call("placement.unbind", {"PLACEMENT": "CRM_DEAL_DETAIL_TAB"})
    c.call("bizproc.robot.delete", {"CODE": "hub24_alma_push"})
    report = reconcile(installed["row_id"])
    assert "event ONCRMDEALADD" in report.bound
    assert any("old-events" in r for r in report.removed)
    assert "placement CRM_DEAL_DETAIL_TAB" in report.bound and "robot hub24_alma_push" in report.bound
    assert not reconcile(installed["row_id"]).changed
    assert all(not h["handler"].endswith("/old-events") for h in portal.installation(cid)["handlers"])


def test_changed_robot_declaration_is_updated(installed, db):
    manifest = load_manifest()
    manifest["robots"][0]["name"] = {"en": "Send deal to partner", "ru": "Отправить сделку партнёру"}
    report = reconcile(installed["row_id"], manifest=manifest)
    assert report.updated == [f"robot {manifest['robots'][0]['code']}"] and not report.bound
    assert not reconcile(installed["row_id"], manifest=manifest).changed


def test_finish_install_endpoint(installed, client, db):
    resp = client.post("/install/finish", headers={"Authorization": f"Bearer {installed['frame_token']}"})
    assert resp.status_code == 200 and resp.json["installed"] is True
    row = _row(db, installed["portal"].member_id)
    assert row.status == PortalStatus.active and row.install_finished_at is not None
    assert client.post("/install/finish").status_code == 401


def test_onappinstall_event_shape(hub, app, db):
    """An app without UI gets ONAPPINSTALL (fixture onappinstall_event.json) at its install URL."""
    portal = hub["portal"]
    out = portal.install(hub["client_id"], mode="event")
    portal.flush()
    deliveries = portal.deliveries(client_id=hub["client_id"], kind="install")
    assert deliveries[-1]["http_status"] == 200, deliveries[-1]["response"]
    documented = fixture("onappinstall_event.json")
    assert set(documented["auth"]) <= set(deliveries[-1]["payload"]["auth"])
    row = _row(db, portal.member_id)
    assert row.status == PortalStatus.active and row.install_finished_at is not None
    assert row.application_token == out["installation"]["application_token"]
    run_jobs(app, "maintenance")  # the reconcile queued by ONAPPINSTALL
    inst = portal.installation(hub["client_id"])
    assert {r for r in inst["robots"]} == {r["code"] for r in load_manifest()["robots"]}
    assert any(h["event"] == "ONAPPUNINSTALL" for h in inst["handlers"])


def test_update_replaces_application_token_and_reconciles(installed, app, db):
    portal, cid = installed["portal"], installed["client_id"]
    old = _row(db, portal.member_id).application_token
    portal.update_app(cid)
    portal.flush()
    new = portal.installation(cid)["application_token"]
    assert new != old
    assert _row(db, portal.member_id).application_token == new
    run_jobs(app, "maintenance")
    assert not reconcile(installed["row_id"]).changed


def test_uninstall_forgets_tokens_and_clean_drops_data(installed, app, db):
    portal, cid = installed["portal"], installed["client_id"]
    row = _row(db, portal.member_id)
    db.execute(text(f'CREATE SCHEMA IF NOT EXISTS "portal_{row.id}"'))
    db.execute(text(f'CREATE TABLE "portal_{row.id}".deals (id int)'))
    db.commit()
    portal.uninstall(cid, clean=True)
    portal.flush()
    got = portal.deliveries(client_id=cid, kind="uninstall")[-1]
    assert got["http_status"] == 200, got["response"]
    row = _row(db, portal.member_id)
    assert row.status == PortalStatus.uninstalled and row.application_token is None
    assert db.scalar(select(PortalToken).where(PortalToken.portal_id == row.id)) is None
    assert db.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"),
                      {"n": f"portal_{row.id}"}).scalar() == 0


def test_uninstall_without_clean_keeps_data_then_reinstall_works(installed, app, db):
    portal, cid = installed["portal"], installed["client_id"]
    row = _row(db, portal.member_id)
    db.execute(text(f'CREATE SCHEMA IF NOT EXISTS "portal_{row.id}"'))
    db.commit()
    portal.uninstall(cid, clean=False)
    portal.flush()
    assert _row(db, portal.member_id).status == PortalStatus.uninstalled
    assert db.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"),
                      {"n": f"portal_{row.id}"}).scalar() == 1
    out = portal.install(cid, mode="frame")
    assert out["delivery"]["http_status"] == 200, (out["delivery"]["error"], out["delivery"]["response"][:300])
    again = _row(db, portal.member_id)
    assert again.id == row.id and again.status == PortalStatus.installing
    assert again.application_token == portal.installation(cid)["application_token"]
    assert again.token is not None and again.token.access_token
    assert len(portal.installation(cid)["robots"]) == len(load_manifest()["robots"])


def test_install_page_reopened_after_finish_keeps_the_administrators_tokens(installed, client, db):
    from tests.lifecycle.conftest import post_form

    client.post("/install/finish", headers={"Authorization": f"Bearer {installed['frame_token']}"})
    portal = installed["portal"]
    before = _row(db, portal.member_id).token.access_token
    other = portal.issue_tokens(installed["client_id"], user_id=2)["access_token"]
    body = dict(fixture("install_post.json"))
    query = {"DOMAIN": portal.domain, "PROTOCOL": "0", "LANG": "en", "APP_SID": body.pop("APP_SID")}
    for k in ("DOMAIN", "PROTOCOL", "LANG"):
        body.pop(k)
    body.update(member_id=portal.member_id, AUTH_ID=other,
                APPLICATION_TOKEN=portal.installation(installed["client_id"])["application_token"])
    assert post_form(client, "/install", body, query).status_code == 200
    row = _row(db, portal.member_id)
    assert row.token.access_token == before and row.status == PortalStatus.active
