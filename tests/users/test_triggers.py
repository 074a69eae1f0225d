"""Every way a directory sync starts: ONUSERADD (one user), the daily schedule, the CLI, the API job."""
from datetime import datetime, timezone

from sqlalchemy import select

from app.bitrix.events import process_event
from app.jobs import AppSimpleWorker, get_queue
from app.models.directory import DirectorySettings, DirectoryUser
from app.users.service import run_directory_sync, schedule_daily_syncs

from .conftest import add_portal_user


def _work(app, redis_conn):
    worker = AppSimpleWorker([get_queue("sync", redis_conn)], connection=redis_conn)
    worker.flask_app = app
    worker.work(burst=True)


def _user(db, bid):
    return db.scalar(select(DirectoryUser).where(DirectoryUser.bitrix_user_id == bid))


def test_onuseradd_syncs_that_one_user(app, db, portal, sandbox, redis_conn):
    uid = add_portal_user(sandbox, NAME="Greta", LAST_NAME="New", EMAIL="Greta@Example.com", IS_ADMIN=True,
                          WORK_POSITION="CFO", UF_DEPARTMENT=[4])
    assert process_event(portal.id, "ONUSERADD", {"ID": str(uid)}) is not None
    ids = get_queue("sync", redis_conn).job_ids
    assert f"users-sync-user-{portal.id}-{uid}" in ids
    _work(app, redis_conn)
    u = _user(db, uid)
    assert (u.email, u.role, u.position, u.departments, u.active) == ("Greta@Example.com", "admin", "CFO", [4], True)
    assert u.password_set_at is None
    others = db.scalars(select(DirectoryUser.bitrix_user_id).where(DirectoryUser.bitrix_user_id != uid)).all()
    assert others == []  # one user, not the whole directory


def test_single_user_sync_sees_a_portal_wide_duplicate_email(app, db, portal, sandbox):
    uid = add_portal_user(sandbox, NAME="Copy", EMAIL="USER3@example.com")
    run = run_directory_sync(portal.id, "event", bitrix_user_id=uid)
    assert _user(db, uid) is None
    assert run["report"]["conflicts"][0]["bitrix_user_ids"] == [3, uid]


def test_single_user_sync_deactivates_a_leaver(app, db, portal, sandbox):
    run_directory_sync(portal.id, "cli")
    sandbox.portal.crm.users[6]["ACTIVE"] = False
    run = run_directory_sync(portal.id, "event", bitrix_user_id=6)
    assert _user(db, 6).active is False and run["report"]["deactivated"][0]["bitrix_user_id"] == 6
    assert _user(db, 5).active is True


def test_non_user_events_queue_no_directory_sync(app, db, portal, redis_conn):
    process_event(portal.id, "ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}})
    assert not [j for j in get_queue("sync", redis_conn).job_ids if j.startswith("users-sync")]


def test_daily_schedule_follows_the_configured_time(app, db, portal, redis_conn):
    day = datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert schedule_daily_syncs(day.replace(hour=2, minute=59)) == 0
    assert schedule_daily_syncs(day.replace(hour=3, minute=0)) == 1
    assert get_queue("sync", redis_conn).job_ids == [f"users-sync-{portal.id}"]
    assert schedule_daily_syncs(day.replace(hour=9)) == 0  # once a day
    db.get(DirectorySettings, portal.id).daily_at = "22:30"
    db.commit()
    nxt = day.replace(day=3)
    assert schedule_daily_syncs(nxt.replace(hour=22, minute=0)) == 0
    assert schedule_daily_syncs(nxt.replace(hour=22, minute=30)) == 1
    assert db.get(DirectorySettings, portal.id).last_daily_on == "2026-03-03"


def test_daily_sync_is_a_registered_periodic_job():
    from app.jobs import periodic_jobs
    from app.users.service import schedule_daily_syncs as fn

    assert [p.name for p in periodic_jobs() if p.func is fn] == ["users-daily-sync"]


def test_cli_syncs_one_portal_or_all_and_prints_the_report(app, db, portal):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["users", "sync", "--portal", portal.member_id])
    assert out.exit_code == 0, out.output
    assert "created 9" in out.output and "conflict user7@example.com" in out.output
    assert db.scalar(select(DirectoryUser).where(DirectoryUser.bitrix_user_id == 1)).role == "admin"
    again = runner.invoke(args=["users", "sync"])
    assert again.exit_code == 0 and "created 0, updated 0, deactivated 0" in again.output
    bad = runner.invoke(args=["users", "sync", "--portal", "nope"])
    assert bad.exit_code != 0 and "no portal 'nope'" in bad.output
