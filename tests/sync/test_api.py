"""The sync API: start, status, config and webhook registration, with API keys and bad input."""
from rq.job import Job

from app.api.auth import create_api_key
from app.jobs import get_queue


def auth(db, portal, name="test"):
    key = create_api_key(portal, name)
    db.commit()
    return {"Authorization": f"Bearer {key}"}


def test_requires_a_bearer_token(client, portal):
    for method, path in (("post", "/api/v1/sync/start/deal"), ("get", "/api/v1/sync/status"),
                         ("get", "/api/v1/sync/config"), ("put", "/api/v1/sync/config")):
        r = getattr(client, method)(path)
        assert r.status_code == 401 and "Bearer" in r.get_json()["message"]
    r = client.get("/api/v1/sync/status", headers={"Authorization": "Bearer hub24_forged"})
    assert r.status_code == 401 and "unknown or revoked" in r.get_json()["message"]


def test_start_queues_a_job_per_entity_with_dedupe(client, db, portal, redis_conn):
    headers = auth(db, portal)
    r = client.post("/api/v1/sync/start/deal", json={"sync_type": "full"}, headers=headers)
    assert r.status_code == 202, r.get_json()
    job_id = r.get_json()["queued"][0]["job_id"]
    again = client.post("/api/v1/sync/start/deal", json={"sync_type": "full"}, headers=headers)
    assert again.get_json()["queued"][0]["job_id"] == job_id
    assert get_queue("sync").count == 1
    job = Job.fetch(job_id, connection=redis_conn)
    assert job.args[:3] == (portal.id, "deal", "full")
    status = client.get("/api/v1/sync/status", headers=headers).get_json()
    assert status["jobs"][0]["entity"] == "deal" and status["portal"] == portal.member_id


def test_start_refuses_bad_input(client, db, portal):
    headers = auth(db, portal)
    r = client.post("/api/v1/sync/start/deal", json={"sync_type": "sometimes"}, headers=headers)
    assert r.status_code == 400 and "sync_type" in r.get_json()["message"]
    r = client.post("/api/v1/sync/start/invoices", json={"sync_type": "full"}, headers=headers)
    assert r.status_code == 404 and "Unknown entity" in r.get_json()["message"]
    r = client.post("/api/v1/sync/start/deal", data="not json", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_config_round_trip_and_validation(client, db, portal):
    headers = auth(db, portal)
    cfg = client.get("/api/v1/sync/config", headers=headers).get_json()
    assert cfg["deal"]["enabled"] is True and "sp_128" in cfg
    r = client.put("/api/v1/sync/config", json={"deal": {"interval_s": 900, "realtime": False}}, headers=headers)
    assert r.status_code == 200 and r.get_json()["deal"]["interval_s"] == 900
    assert r.get_json()["deal"]["realtime"] is False
    for bad, words in (({"deal": {"interval_s": 5}}, "between 60 and 86400"), ({"nope": {"enabled": True}}, "unknown entity"),
                       ({"deal": {"enabled": "yes"}}, "true or false"), ({"deal": {"colour": 1}}, "unknown setting")):
        r = client.put("/api/v1/sync/config", json=bad, headers=headers)
        assert r.status_code == 400 and words in r.get_json()["message"]
    assert client.get("/api/v1/sync/config", headers=headers).get_json()["deal"]["interval_s"] == 900


def test_status_shows_runs_with_counters(client, db, portal):
    from app.sync import service

    service.run_sync(portal.id, "company", "full")
    status = client.get("/api/v1/sync/status", headers=auth(db, portal)).get_json()
    full = status["entities"]["company"]["runs"]["full"]
    assert full["status"] == "succeeded" and full["rows_read"] == full["rows_written"] > 0 and full["progress"] == 1.0


def test_webhook_registration_is_refused_for_webhook_portals(client, db, portal):
    r = client.post("/api/v1/webhooks/register", headers=auth(db, portal))
    assert r.status_code == 409 and "incoming webhook" in r.get_json()["message"]


def test_a_key_reads_only_its_own_portal(client, db, portal):
    from app.models import Portal, PortalStatus

    other = Portal(member_id="other-portal", domain="other.example", status=PortalStatus.active)
    db.add(other)
    db.commit()
    headers = auth(db, other)
    status = client.get("/api/v1/sync/status", headers=headers).get_json()
    assert status["portal"] == "other-portal"


def test_frame_users_need_to_be_administrators_to_change_sync(app, client, db, portal):
    from app.bitrix.verify import issue_frame_token

    user = {"Authorization": f"Bearer {issue_frame_token(portal, 'LEFT_MENU', user_id=3)}"}
    admin = {"Authorization": f"Bearer {issue_frame_token(portal, 'LEFT_MENU', user_id=1, admin=True)}"}
    assert client.get("/api/v1/sync/config", headers=user).status_code == 200  # reading is for everyone
    for method, path, body in (("put", "/api/v1/sync/config", {"deal": {"interval_s": 600}}),
                               ("post", "/api/v1/sync/start/deal", {"sync_type": "full"}),
                               ("post", "/api/v1/webhooks/register", None)):
        r = getattr(client, method)(path, json=body, headers=user)
        assert r.status_code == 403 and "administrators" in r.get_json()["message"]
    assert client.put("/api/v1/sync/config", json={"deal": {"interval_s": 600}}, headers=admin).status_code == 200


def test_cli_creates_an_api_key_that_works(app, client, db, portal):
    result = app.test_cli_runner().invoke(args=["portal", "api-key", portal.member_id, "--name", "BI export"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("hub24_")
    r = client.get("/api/v1/sync/config", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    bad = app.test_cli_runner().invoke(args=["portal", "api-key", "nope", "--name", "x"])
    assert bad.exit_code != 0 and "no installed portal" in bad.output
