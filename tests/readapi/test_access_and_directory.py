"""Who may read what, the errors operators see, the directory endpoints, and statistics against SQL."""
from sqlalchemy import text

from app.jobs import AppSimpleWorker, get_queue
from app.models import PortalStatus


def test_another_portals_token_is_refused(client, mirror, headers, stranger):
    other, other_headers = stranger
    for url in ("/api/v1/crm/deals", "/api/v1/users", "/api/v1/departments", "/api/v1/stats/summary"):
        for ask in (f"?portal={mirror.id}", f"?member_id={mirror.member_id}", f"?portal_id={mirror.id}"):
            r = client.get(url + ask, headers=other_headers)
            assert r.status_code == 403 and r.get_json()["error"] == "wrong_portal", (url, ask, r.get_json())
        r = client.get(url, headers={**other_headers, "X-Hub24-Portal": mirror.domain})
        assert r.status_code == 403 and r.get_json()["error"] == "wrong_portal"
        # naming its own portal is fine; the stranger has no mirror, so it is told so
        r = client.get(url + f"?portal={other.member_id}", headers=other_headers)
        assert r.status_code == 409 and r.get_json()["error"] == "mirror_empty" and r.get_json()["what_to_do"]
    assert client.post(f"/api/v1/users/sync?portal={mirror.id}", headers=other_headers).status_code == 403
    ok = client.get(f"/api/v1/crm/deals?portal={mirror.id}&limit=1", headers=headers)
    assert ok.status_code == 200
    # a job id of another portal is not found for the stranger
    job = client.post("/api/v1/users/sync", headers=headers).get_json()["job_id"]
    assert client.get(f"/api/v1/users/sync/{job}", headers=other_headers).status_code == 404


def test_errors_name_the_problem_and_the_fix(client, db, portal, headers):
    r = client.get("/api/v1/crm/deals")
    assert r.status_code == 401 and "Bearer" in r.get_json()["message"]
    r = client.get("/api/v1/crm/deals", headers={"Authorization": "Bearer hub24_revoked"})
    assert r.status_code == 401 and "revoked" in r.get_json()["message"]
    r = client.get("/api/v1/crm/deals", headers=headers)  # nothing synced yet
    assert r.status_code == 409 and r.get_json()["error"] == "mirror_empty" and "/api/v1/sync/start" in r.get_json()["what_to_do"]
    r = client.get("/api/v1/users", headers=headers)
    assert r.status_code == 409 and "POST /api/v1/users/sync" in r.get_json()["what_to_do"]
    portal.scopes = ["user", "department"]
    db.commit()
    r = client.get("/api/v1/crm", headers=headers)
    assert r.status_code == 403 and r.get_json()["error"] == "missing_scope" and "'crm'" in r.get_json()["message"]
    portal.scopes = ["crm", "user"]
    portal.status, portal.needs_reinstall_reason = PortalStatus.needs_reinstall, "invalid_grant"
    db.commit()
    r = client.post("/api/v1/users/sync", headers=headers)
    assert r.status_code == 409 and r.get_json()["error"] == "authorization_lost" and "reinstall" in r.get_json()["what_to_do"]
    portal.status = PortalStatus.uninstalled
    db.commit()
    r = client.get("/api/v1/users", headers=headers)
    assert r.status_code == 401 and "not installed" in r.get_json()["message"]


def test_directory_endpoints(client, mirror, headers, db, app, redis_conn):
    r = client.post("/api/v1/users/sync", headers=headers)
    assert r.status_code == 202
    job_id = r.get_json()["job_id"]
    worker = AppSimpleWorker([get_queue("sync", redis_conn)], connection=redis_conn)
    worker.flask_app = app
    worker.work(burst=True)
    job = client.get(f"/api/v1/users/sync/{job_id}", headers=headers).get_json()
    assert job["status"] == "finished" and job["result"]["status"] == "succeeded"
    assert job["result"]["report"]["counts"]["created"] == 0  # the fixture synced already: nothing new
    runs = client.get("/api/v1/users/sync/runs?limit=2", headers=headers).get_json()["data"]
    assert [r["trigger"] for r in runs] == ["api", "cli"]

    users = client.get("/api/v1/users?limit=500", headers=headers).get_json()
    want = db.execute(text("SELECT id, role, email FROM users WHERE portal_id = :p ORDER BY id"), {"p": mirror.id}).all()
    assert [(u["id"], u["role"], u["email"]) for u in users["data"]] == [tuple(w) for w in want]
    assert all("password_hash" not in u for u in users["data"]) and users["meta"]["total"] == len(want)
    admins = client.get("/api/v1/users?role=admin", headers=headers).get_json()["data"]
    assert {u["bitrix_user_id"] for u in admins} == {1, 2}
    sales = client.get("/api/v1/users?department=2&include_subdepartments=true&active=true", headers=headers).get_json()
    want = db.execute(text("SELECT bitrix_user_id FROM users WHERE portal_id = :p AND active AND departments && "
                           "ARRAY[2, 7, 8]::bigint[] ORDER BY id"), {"p": mirror.id}).scalars().all()
    assert [u["bitrix_user_id"] for u in sales["data"]] == want and want
    one = client.get(f"/api/v1/users/{users['data'][0]['id']}", headers=headers).get_json()["data"]
    assert one == users["data"][0]
    for bad, words in (("?role=boss", "role must be one of"), ("?active=maybe", "active must be true or false"),
                       ("?department=x", "department must be a whole number"), ("?limit=9999", "limit must be from")):
        r = client.get("/api/v1/users" + bad, headers=headers)
        assert r.status_code == 400 and words in r.get_json()["message"]

    flat = {d["id"]: d for d in client.get("/api/v1/departments", headers=headers).get_json()["data"]}
    assert flat[7]["path"] == [1, 2, 7] and flat[7]["depth"] == 2 and flat[7]["head_bitrix_user_id"] == 7
    tree = client.get("/api/v1/departments/tree", headers=headers).get_json()["data"]
    assert [d["id"] for d in tree] == [1]
    sales_node = next(c for c in tree[0]["children"] if c["id"] == 2)
    assert sorted(c["id"] for c in sales_node["children"]) == [7, 8]

    s = client.get("/api/v1/users/settings", headers=headers).get_json()
    assert s == {"daily_at": "03:00", "daily_at_is_default": True, "roles_without_email": ["employee"]}
    r = client.put("/api/v1/users/settings", json={"daily_at": "04:15", "roles_without_email": []}, headers=headers)
    assert r.status_code == 200 and r.get_json()["daily_at"] == "04:15" and r.get_json()["roles_without_email"] == []
    for bad, words in (({"daily_at": "25:00"}, "HH:MM"), ({"roles_without_email": ["boss"]}, "list of roles"),
                       ({"colour": 1}, "unknown setting")):
        r = client.put("/api/v1/users/settings", json=bad, headers=headers)
        assert r.status_code == 400 and words in r.get_json()["message"]
    r = client.put("/api/v1/users/settings", data="nope", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert client.get("/api/v1/users/sync/" + "x" * 200, headers=headers).status_code == 400


def test_stats_summary_agrees_with_sql(client, mirror, headers, db):
    body = client.get("/api/v1/stats/summary?entity=deals&bucket=year", headers=headers).get_json()
    s = f"portal_{mirror.id}"
    total = db.execute(text(f"SELECT count(*), coalesce(sum(opportunity), 0) FROM {s}.deals")).one()
    assert body["total"] == {"records": total[0], "amount": float(total[1])}
    by_stage = db.execute(text(f"SELECT stage_id, max(stage_id_label), count(*) FROM {s}.deals GROUP BY 1 "
                               "ORDER BY 3 DESC, 1")).all()
    assert [(r["stage_id"], r["stage"], r["records"]) for r in body["by_stage"]] == [tuple(r) for r in by_stage]
    by_manager = db.execute(text(f"SELECT d.assigned_by_id, max(u.full_name), count(*) FROM {s}.deals d LEFT JOIN "
                                 f"{s}.users u ON u.id = d.assigned_by_id GROUP BY 1 ORDER BY 3 DESC, 1")).all()
    assert [(r["user_id"], r["name"], r["records"]) for r in body["by_manager"]] == [tuple(r) for r in by_manager]
    assert sum(r["records"] for r in body["by_department"]) >= total[0]
    won = db.execute(text(f"SELECT count(*) FROM {s}.deals WHERE stage_semantic_id = 'S'")).scalar()
    assert sum(a["records"] for a in body["amounts"] if a["outcome"] == "won") == won
    years = db.execute(text(f"SELECT count(DISTINCT date_trunc('year', created_time AT TIME ZONE 'UTC')) FROM {s}.deals")).scalar()
    assert body["activity"]["bucket"] == "year" and len(body["activity"]["series"]) == years
    assert sum(p["created"] for p in body["activity"]["series"]) == total[0]
    part = client.get("/api/v1/stats/summary?from=2024-01-01&to=2025-01-01", headers=headers).get_json()
    n = db.execute(text(f"SELECT count(*) FROM {s}.deals WHERE created_time >= '2024-01-01' AND created_time < '2025-01-01'")).scalar()
    assert part["total"]["records"] == n and part["period"] == {"from": "2024-01-01", "to": "2025-01-01"}
    leads = client.get("/api/v1/stats/summary?entity=leads", headers=headers).get_json()
    assert leads["by_stage"] and leads["by_stage"][0]["stage"]
