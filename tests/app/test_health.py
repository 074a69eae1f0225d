"""GET /health reports PostgreSQL, Redis, queues, workers and portals; 503 with reasons when unhealthy."""
from datetime import datetime, timedelta, timezone

from rq import Worker

from app.jobs import get_queue
from app.models import Portal, PortalStatus, PortalToken


def register_worker(redis_conn, queues=("events", "sync")):
    w = Worker([get_queue(q, redis_conn) for q in queues], connection=redis_conn)
    w.register_birth()
    return w


def test_no_worker_is_unhealthy_with_reason(client):
    r = client.get("/health")
    assert r.status_code == 503
    body = r.get_json()
    assert body["postgres"]["up"] and body["redis"]["up"]
    assert body["reasons"] == ["no worker is running: start one with `flask worker`"]


def test_healthy_with_worker_queues_and_portal_line(client, db, redis_conn):
    w = register_worker(redis_conn)
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    p = Portal(member_id="abc", domain="a.bitrix24.com", status=PortalStatus.active, application_token="t" * 20)
    p.token = PortalToken(access_token="x" * 20, refresh_token="y" * 20, expires_at=expires)
    db.add(p)
    db.add(Portal(member_id="gone", domain="g.bitrix24.com", status=PortalStatus.uninstalled))
    db.add(Portal(member_id="lost", domain="l.bitrix24.com", status=PortalStatus.needs_reinstall,
                  needs_reinstall=True, needs_reinstall_reason="refresh token rejected (invalid_grant)"))
    db.commit()
    get_queue("sync", redis_conn).enqueue("builtins.print", "queued only")
    r = client.get("/health")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["workers"]["alive"] == 1
    assert body["workers"]["by_queue"]["events"] == 1 and body["workers"]["by_queue"]["charts"] == 0
    assert body["queues"]["sync"] == {"depth": 1, "failed": 0}
    lines = {line["member_id"]: line for line in body["portals"]}
    assert set(lines) == {"abc", "lost"}  # uninstalled portals are not listed
    assert lines["abc"]["installed"] is True
    assert lines["abc"]["token_expires_at"].startswith(expires.isoformat()[:16])
    assert body["warnings"] == ["portal l.bitrix24.com needs reinstalling: refresh token rejected (invalid_grant)"]
    assert "x" * 20 not in r.get_data(as_text=True)
    w.register_death()


def test_postgres_down_is_503(make_app, redis_conn):
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", REDIS=redis_conn)
    register_worker(redis_conn)
    r = app.test_client().get("/health")
    assert r.status_code == 503
    assert "PostgreSQL is unreachable" in r.get_json()["reasons"]


def test_redis_down_is_503(make_app, engine):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", ENGINE=engine)
    r = app.test_client().get("/health")
    assert r.status_code == 503
    assert "Redis is unreachable" in r.get_json()["reasons"]
