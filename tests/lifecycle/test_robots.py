"""Robot calls: verified, recorded, queued on `integrations`; forged ones refused with nothing recorded."""
from __future__ import annotations

from rq import Queue
from sqlalchemy import func, select

from app.bitrix.robots import robot_handler, run_robot, _HANDLERS
from app.models import RobotInvocation
from tests.lifecycle.conftest import post_form, run_jobs


def _count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(RobotInvocation))


def test_deal_entering_stage_runs_robot(installed, app, db, redis_conn):
    portal, cid = installed["portal"], installed["client_id"]
    auth = portal.issue_tokens(cid)["access_token"]
    deal = int(portal.call("crm.deal.add", {"fields": {"TITLE": "Flat 12", "STAGE_ID": "NEW"}}, auth=auth)["result"])
    rule = portal.add_rule("PREPARATION", "hub24_deal_transfer", {"partner": "acme", "comment": "hi"}, client_id=cid)
    try:
        portal.move_deal(deal, "PREPARATION")
        portal.flush()
        run = [r for r in portal.robot_runs() if r["rule_id"] == rule["id"]][-1]
        sent = [d for d in portal.deliveries(client_id=cid, kind="robot") if d["id"] == run["delivery_id"]][0]
        assert sent["http_status"] == 200, sent["response"]
        db.expire_all()
        inv = db.scalar(select(RobotInvocation).where(RobotInvocation.workflow_id == run["workflow_id"]))
        assert inv.code == "hub24_deal_transfer" and inv.document_id == ["crm", "CCrmDocumentDeal", f"DEAL_{deal}"]
        assert inv.properties == {"partner": "acme", "comment": "hi"} and inv.status == "queued"
        assert inv.event_token and inv.event_token == sent["payload"]["event_token"]
        assert Queue("integrations", connection=redis_conn).count == 1
        run_jobs(app, "integrations")
        db.expire_all()
        assert db.get(RobotInvocation, inv.id).status == "no_handler"
        # the same call delivered twice is one invocation
        again = post_form(app.test_client(), "/robots/hub24_deal_transfer", sent["payload"])
        assert again.status_code == 200 and again.json["invocation_id"] == inv.id and _count(db) == 1
    finally:
        portal.delete_rule(rule["id"])


def test_registered_handler_runs(installed, app, db):
    portal, cid = installed["portal"], installed["client_id"]
    token = portal.installation(cid)["application_token"]
    body = {"workflow_id": "wf1", "code": "hub24_alma_push", "document_id": ["crm", "CCrmDocumentDeal", "DEAL_3"],
            "document_type": ["crm", "CCrmDocumentDeal", "DEAL"], "event_token": "tok|1", "use_subscription": "Y",
            "properties": {"what": "tenant", "undeclared": "x"}, "ts": "1700000000",
            "auth": {"member_id": portal.member_id, "application_token": token}}
    resp = post_form(app.test_client(), "/robots/hub24_alma_push", body)
    assert resp.status_code == 200
    inv_id = resp.json["invocation_id"]
    assert db.get(RobotInvocation, inv_id).properties == {"what": "tenant"}
    seen = []

    @robot_handler("hub24_alma_push")
    def _handle(invocation_id: int) -> None:
        seen.append(invocation_id)
        db.get(RobotInvocation, invocation_id).status = "done"
        db.commit()

    try:
        assert run_robot(inv_id) == "done" and seen == [inv_id]
    finally:
        _HANDLERS.pop("hub24_alma_push", None)


def test_forged_robot_calls_refused(installed, client, db, redis_conn):
    portal, cid = installed["portal"], installed["client_id"]
    token = portal.installation(cid)["application_token"]
    body = {"workflow_id": "wf2", "code": "hub24_deal_transfer",
            "document_id": ["crm", "CCrmDocumentDeal", "DEAL_3"], "event_token": "t", "properties": {"partner": "x"},
            "auth": {"member_id": portal.member_id, "application_token": "0" * 32}}
    assert post_form(client, "/robots/hub24_deal_transfer", body).status_code == 401
    body["auth"]["application_token"] = token
    assert post_form(client, "/robots/no_such_robot", body).status_code == 404
    body["code"] = "hub24_alma_push"
    assert post_form(client, "/robots/hub24_deal_transfer", body).status_code == 400
    assert _count(db) == 0 and Queue("integrations", connection=redis_conn).count == 0
