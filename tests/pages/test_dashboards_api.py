"""/api/v1/dashboards and /api/v1/settings: per portal, per user, admins only for settings, 4xx for bad input."""
from __future__ import annotations

import pytest

from app.api.auth import create_api_key
from app.bitrix.verify import issue_frame_token
from app.models import Portal
from app.models.dashboards import Dashboard, PortalSettings, RecentQuestion

RESULT = {"title": "Deals by stage", "chart_type": "bar", "option": {"series": [{"type": "bar", "data": [1, 2]}]},
          "columns": ["stage", "n"], "rows": [["New", 1], ["Won", 2]], "sql": "SELECT 1", "explanation": "x"}


@pytest.fixture()
def portal_row(installed, db):
    return db.get(Portal, installed["row_id"])


@pytest.fixture()
def as_user(portal_row):
    def headers(user_id: int | None = 1, admin: bool = False) -> dict:
        return {"Authorization": "Bearer " + issue_frame_token(portal_row, "DEFAULT", user_id, admin=admin)}
    return headers


def test_dashboard_lifecycle_for_its_owner(client, as_user, db):
    me = as_user(1)
    made = client.post("/api/v1/dashboards", json={"title": "Sales", "refresh_s": 300}, headers=me)
    assert made.status_code == 201 and made.json["title"] == "Sales" and made.json["mine"] is True
    did = made.json["id"]
    w = client.post(f"/api/v1/dashboards/{did}/widgets", headers=me,
                    json={"title": "Deals by stage", "kind": "ask", "question": "deals by stage", "result": RESULT})
    assert w.status_code == 201 and w.json["chart_type"] == "bar" and w.json["refreshed_at"]
    listed = client.get("/api/v1/dashboards", headers=me).json["dashboards"]
    assert [d["title"] for d in listed] == ["Sales"] and listed[0]["widgets"][0]["result"]["rows"] == RESULT["rows"]
    patched = client.patch(f"/api/v1/dashboards/{did}", json={"refresh_s": 3600, "title": "Sales team"}, headers=me)
    assert (patched.json["refresh_s"], patched.json["title"]) == (3600, "Sales team")
    fresh = dict(RESULT, rows=[["New", 5]])
    upd = client.put(f"/api/v1/dashboards/{did}/widgets/{w.json['id']}", json={"result": fresh}, headers=me)
    assert upd.json["result"]["rows"] == [["New", 5]]
    assert client.delete(f"/api/v1/dashboards/{did}/widgets/{w.json['id']}", headers=me).status_code == 204
    assert client.delete(f"/api/v1/dashboards/{did}", headers=me).status_code == 204
    assert db.query(Dashboard).count() == 0


def test_dashboards_are_per_user_unless_shared(client, as_user, portal_row, db):
    mine = client.post("/api/v1/dashboards", json={"title": "Private"}, headers=as_user(1)).json
    shared = client.post("/api/v1/dashboards", json={"title": "Team", "shared": True}, headers=as_user(1)).json
    other = as_user(3)
    assert [d["title"] for d in client.get("/api/v1/dashboards", headers=other).json["dashboards"]] == ["Team"]
    assert client.get(f"/api/v1/dashboards/{mine['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/dashboards/{mine['id']}", headers=other).status_code == 404
    assert client.patch(f"/api/v1/dashboards/{shared['id']}", json={"title": "Mine now"}, headers=other).status_code == 403
    # anyone who sees a shared dashboard may store a refreshed result, not rename or delete it
    w = client.post(f"/api/v1/dashboards/{shared['id']}/widgets", headers=as_user(1),
                    json={"title": "KPI", "kind": "build", "spec": {"entity": "deals"}, "result": RESULT}).json
    assert client.put(f"/api/v1/dashboards/{shared['id']}/widgets/{w['id']}", json={"result": RESULT},
                      headers=other).status_code == 200
    assert client.put(f"/api/v1/dashboards/{shared['id']}/widgets/{w['id']}", json={"title": "x"},
                      headers=other).status_code == 403
    key = create_api_key(portal_row, "script")
    db.commit()
    titles = {d["title"] for d in client.get("/api/v1/dashboards", headers={"Authorization": f"Bearer {key}"}).json["dashboards"]}
    assert titles == {"Private", "Team"}
    assert db.get(Dashboard, shared["id"]).title == "Team"


@pytest.mark.parametrize("path, body, message", [
    ("/api/v1/dashboards", None, "JSON object"),
    ("/api/v1/dashboards", {"title": ""}, "title"),
    ("/api/v1/dashboards", {"title": "x" * 201}, "title"),
    ("/api/v1/dashboards", {"title": "A", "refresh_s": 30}, "refresh_s"),
    ("/api/v1/dashboards", {"title": "A", "refresh_s": True}, "refresh_s"),
    ("/api/v1/dashboards", {"title": "A", "shared": "yes"}, "shared"),
    ("/api/v1/dashboards/recent", {"question": ""}, "question"),
    ("/api/v1/dashboards/recent", {"question": "q", "job_id": "../etc"}, "job_id"),
])
def test_bad_input_is_a_400_naming_the_field(client, as_user, path, body, message, db):
    resp = client.post(path, json=body, headers=as_user(1)) if body is not None else \
        client.post(path, data="not json", headers={**as_user(1), "Content-Type": "application/json"})
    assert resp.status_code == 400 and message in resp.json["message"]
    assert db.query(Dashboard).count() == 0 and db.query(RecentQuestion).count() == 0


def test_bad_widgets_and_unknown_ids(client, as_user):
    me = as_user(1)
    did = client.post("/api/v1/dashboards", json={"title": "A"}, headers=me).json["id"]
    cases = [({"title": "t", "kind": "sql"}, "kind"), ({"title": "t", "kind": "ask"}, "question"),
             ({"title": "t", "kind": "build"}, "spec"), ({"title": "t", "kind": "build", "spec": {"a": 1}, "result": []}, "result"),
             ({"title": "t", "kind": "build", "spec": {"a": 1}, "chart_type": "DROP TABLE"}, "chart_type"),
             ({"title": "t", "kind": "build", "spec": {"a": 1}, "result": {"rows": ["x" * 1024] * 1600}}, "larger")]
    for body, message in cases:
        resp = client.post(f"/api/v1/dashboards/{did}/widgets", json=body, headers=me)
        assert resp.status_code == 400 and message in resp.json["message"], (body.keys(), resp.json)
    assert client.get("/api/v1/dashboards/999999", headers=me).status_code == 404
    assert client.put(f"/api/v1/dashboards/{did}/widgets/999999", json={"result": {}}, headers=me).status_code == 404
    assert client.get("/api/v1/dashboards").status_code == 401
    assert client.get("/api/v1/dashboards", headers={"Authorization": "Bearer forged.token.here"}).status_code == 401


def test_recent_questions_newest_first_deduplicated_and_trimmed(client, as_user, db):
    me = as_user(1)
    for i in range(25):
        assert client.post("/api/v1/dashboards/recent", json={"question": f"question {i % 12}"}, headers=me).status_code == 201
    shown = client.get("/api/v1/dashboards/recent", headers=me).json["questions"]
    assert [q["question"] for q in shown][:3] == ["question 0", "question 11", "question 10"]
    assert len(shown) == 10 and len({q["question"] for q in shown}) == 10
    assert db.query(RecentQuestion).count() == 20
    assert client.get("/api/v1/dashboards/recent", headers=as_user(3)).json["questions"] == []


def test_settings_are_for_administrators_only(client, as_user, installed, db):
    assert client.get("/api/v1/settings", headers=as_user(3)).status_code == 403
    assert client.put("/api/v1/settings", json={"ai_enabled": False}, headers=as_user(3)).status_code == 403
    assert db.get(PortalSettings, installed["row_id"]) is None
    admin = as_user(1, admin=True)
    s = client.get("/api/v1/settings", headers=admin).json
    assert s["ai"] == {"enabled": True, "model": "gpt-4o-mini", "default_model": "gpt-4o-mini",
                       "key_configured": False, "active": False}
    assert s["connection"]["domain"] == installed["portal"].domain and s["connection"]["token_expires_at"]
    out = client.put("/api/v1/settings", json={"ai_enabled": False, "ai_model": "gpt-4.1-mini"}, headers=admin).json
    assert (out["ai"]["enabled"], out["ai"]["model"]) == (False, "gpt-4.1-mini")
    for body, message in [({"ai_enabled": "no"}, "ai_enabled"), ({"ai_model": "bad model!"}, "ai_model"),
                          ({"theme": "dark"}, "Unknown setting"), ([], "JSON object")]:
        resp = client.put("/api/v1/settings", json=body, headers=admin)
        assert resp.status_code == 400 and message in resp.json["message"]
    row = db.get(PortalSettings, installed["row_id"])
    assert (row.ai_enabled, row.ai_model) == (False, "gpt-4.1-mini")


def test_catalog_before_the_first_sync(client, as_user):
    assert client.get("/api/v1/dashboards/catalog", headers=as_user(1)).json == {"entities": [], "synced": False}
