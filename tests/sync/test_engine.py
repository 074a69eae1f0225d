"""Full, incremental, event-driven and reconciling sync against the sandbox, checked row by row."""
import pytest
import requests
from sqlalchemy import select, text

from app.models import PortalEvent
from app.models.sync import RunStatus, SyncRun, SyncState
from app.sync import service
from app.sync.verify import compare


def rest(sandbox, method, **params):
    hook = sandbox.portal.add_webhook(1, ["crm", "user", "department"], code="testhook")
    r = requests.post(sandbox.portal.webhook_url(hook) + method, json=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def check(portal, entity):
    sync = service.open_sync(portal)
    result = compare(sync, sync.spec(entity))
    assert result.ok, result.summary()
    return result


def test_full_sync_mirrors_every_entity_exactly(app, db, portal, sandbox):
    sync = service.open_sync(portal)
    names = [s.name for s in sync.entities()]
    assert names[:4] == ["deal", "lead", "contact", "company"] and any(n.startswith("sp_") for n in names)
    for name in names:
        run = service.run_sync(portal.id, name, "full")
        assert run.status == RunStatus.succeeded, run.error
        assert check(portal, name).portal_rows == run.rows_read
    deals = db.execute(text(f"SELECT count(*) FROM portal_{portal.id}.deals")).scalar()
    assert deals == 160
    # Labels next to ids, titles as comments, reference tables filled.
    row = db.execute(text(f"SELECT stage_id, stage_id_label, category_id_label FROM portal_{portal.id}.deals "
                          "WHERE stage_id_label IS NOT NULL LIMIT 1")).one()
    assert row[1] and row[2]
    assert db.execute(text(f"SELECT count(*) FROM portal_{portal.id}.users")).scalar() > 0
    assert db.execute(text(f"SELECT count(*) FROM portal_{portal.id}.departments")).scalar() > 0
    phones = db.execute(text(f"SELECT count(*) FROM portal_{portal.id}.multifields WHERE type_id = 'PHONE'")).scalar()
    assert phones > 0


def test_custom_list_field_shows_its_label(app, db, portal, sandbox):
    service.run_sync(portal.id, "deal", "full")
    col = db.execute(text(f"SELECT column_name FROM portal_{portal.id}.fields WHERE table_name = 'deals' "
                          "AND b24_type = 'enumeration' AND label_of IS NULL LIMIT 1")).scalar()
    got = db.execute(text(f"SELECT d.{col}, d.{col}_label, e.value FROM portal_{portal.id}.deals d "
                          f"JOIN portal_{portal.id}.enum_items e ON e.column_name = '{col}' AND e.item_id = d.{col} "
                          f"WHERE d.{col} IS NOT NULL LIMIT 1")).one()
    assert got[1] == got[2] and not str(got[1]).isdigit()


def test_incremental_picks_up_changes_and_new_fields(app, db, portal, sandbox):
    service.run_sync(portal.id, "deal", "full")
    rest(sandbox, "crm.item.update", entityTypeId=2, id=5, fields={"title": "Changed by test", "opportunity": 1234.5})
    new = rest(sandbox, "crm.item.add", entityTypeId=2, fields={"title": "Fresh deal", "opportunity": 10})["item"]["id"]
    sandbox.portal.crm.add_user_field(2, "UF_CRM_TEST_PETS", "boolean", "Pets allowed")
    run = service.run_sync(portal.id, "deal", "incremental")
    assert run.status == RunStatus.succeeded and run.rows_read >= 2
    assert run.rows_read < 160  # only what changed since the watermark (plus the overlap window)
    row = db.execute(text(f"SELECT title, opportunity FROM portal_{portal.id}.deals WHERE id = 5")).one()
    assert row == ("Changed by test", 1234.5) or (row[0], float(row[1])) == ("Changed by test", 1234.5)
    assert db.execute(text(f"SELECT title FROM portal_{portal.id}.deals WHERE id = :i"), {"i": new}).scalar() == "Fresh deal"
    cols = db.execute(text("SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                           "AND table_name = 'deals'"), {"s": f"portal_{portal.id}"}).scalars().all()
    assert "uf_crm_test_pets" in cols
    check(portal, "deal")


def test_events_are_coalesced_into_batch_reads_and_deletes_apply(app, db, portal, sandbox):
    service.run_sync(portal.id, "deal", "full")
    for i in range(1, 121):
        rest(sandbox, "crm.item.update", entityTypeId=2, id=i, fields={"title": f"Bulk {i}"})
    rest(sandbox, "crm.item.delete", entityTypeId=2, id=150)
    for i in range(1, 121):
        db.add(PortalEvent(portal_id=portal.id, event_name="ONCRMDEALUPDATE", entity_type="deal", entity_id=str(i),
                           data={"FIELDS": {"ID": str(i)}}, dedupe_key=f"u{i}"))
    db.add(PortalEvent(portal_id=portal.id, event_name="ONCRMDEALDELETE", entity_type="deal", entity_id="150",
                       data={"FIELDS": {"ID": "150"}}, dedupe_key="d150"))
    db.commit()
    totals = service.apply_pending_events(portal.id)
    assert totals["events"] == 121
    assert totals["calls"] == 1  # 120 updates read in one batch call, the delete needs none
    assert totals["deleted"] == 1
    assert db.execute(text(f"SELECT title FROM portal_{portal.id}.deals WHERE id = 77")).scalar() == "Bulk 77"
    assert db.execute(text(f"SELECT count(*) FROM portal_{portal.id}.deals WHERE id = 150")).scalar() == 0
    assert db.scalar(select(PortalEvent).where(PortalEvent.consumed_at.is_(None))) is None
    check(portal, "deal")


def test_reconcile_repairs_lost_events_and_deletions(app, db, portal, sandbox):
    service.run_sync(portal.id, "contact", "full")
    rest(sandbox, "crm.item.delete", entityTypeId=3, id=3)
    rest(sandbox, "crm.item.update", entityTypeId=3, id=4, fields={"name": "Renamed"})
    assert not check_ok(portal, "contact")
    run = service.run_sync(portal.id, "contact", "reconcile")
    assert run.rows_deleted == 1 and run.rows_written >= 1
    check(portal, "contact")


def check_ok(portal, entity) -> bool:
    sync = service.open_sync(portal)
    return compare(sync, sync.spec(entity)).ok


def test_full_sync_resumes_after_a_crash(app, db, portal, sandbox, monkeypatch):
    from app.sync import extract

    real = extract.keyset_pages
    calls = {"n": 0}

    def dying(*args, **kwargs):
        for chunk in real(*args, **kwargs, pages_per_call=1):
            calls["n"] += 1
            if calls["n"] == 3:
                raise ConnectionError("worker killed")
            yield chunk

    monkeypatch.setattr(extract, "keyset_pages", dying)
    with pytest.raises(ConnectionError):
        service.run_sync(portal.id, "deal", "full")
    state = db.scalar(select(SyncState).where(SyncState.portal_id == portal.id, SyncState.entity == "deal"))
    cursor = state.full_cursor
    assert cursor == 100  # two pages of 50 were kept
    failed = db.scalar(select(SyncRun).where(SyncRun.status == RunStatus.failed))
    assert "worker killed" in failed.error
    monkeypatch.setattr(extract, "keyset_pages", real)
    run = service.run_sync(portal.id, "deal", "full")
    assert run.status == RunStatus.succeeded
    assert run.rows_read == 60  # only what was left after the cursor
    check(portal, "deal")


def test_needs_reinstall_pauses_with_a_reason(app, db, portal):
    portal.needs_reinstall = True
    portal.needs_reinstall_reason = "refresh token rejected (invalid_grant)"
    db.commit()
    run = service.run_sync(portal.id, "deal", "full")
    assert run.status == RunStatus.paused
    assert "invalid_grant" in run.error
    assert service.status(portal.id)["paused"].startswith("the portal needs reinstalling")


def test_cli_sync_run_shows_progress_and_verify_agrees(app, db, portal):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sync", "run", "--portal", portal.member_id, "--entity", "deal", "--full"])
    assert result.exit_code == 0, result.output
    assert "deal: succeeded: read 160, written 160, deleted 0" in result.output
    assert "ids" in result.output or "rows" in result.output  # the progress bar was drawn
    verify = runner.invoke(args=["sync", "verify", "--portal", str(portal.id), "--entity", "deal"])
    assert verify.exit_code == 0 and "deal: 160 rows, mirror identical" in verify.output
    bad = runner.invoke(args=["sync", "run", "--portal", "nope"])
    assert bad.exit_code != 0 and "no portal 'nope'" in bad.output


def test_full_sync_with_concurrent_loaders_commits_every_chunk(make_app, throwaway_database):
    """Production loads full syncs on several connections; each chunk commits on its own."""
    from alembic import command

    from app.cli import alembic_config
    from app.db import db_session
    from app.models import ConnectionKind, Portal, PortalStatus
    from sandbox.core import SandboxConfig
    from sandbox.run import start_sandbox

    sandbox = start_sandbox(SandboxConfig(data_size=8000, limits="off", seed=3))
    app = make_app(DATABASE_URL=throwaway_database, SYNC_LOADERS=3, B24_ALLOW_HTTP="true",
                   B24_OAUTH_URL=sandbox.base_url + "/oauth")
    with app.app_context():
        command.upgrade(alembic_config(), "heads")
        hook = sandbox.portal.add_webhook(1, ["crm", "user", "department"])
        p = Portal(member_id=sandbox.portal.member_id, domain=sandbox.portal.domain, status=PortalStatus.active,
                   connection_kind=ConnectionKind.webhook, webhook_url=sandbox.portal.webhook_url(hook))
        db_session().add(p)
        db_session().commit()
        sync = service.open_sync(p)
        sync.max_parallel, sync.fetch_threads = 4, 2  # four windows of 2,000 ids: chunks land out of order
        spec = sync.spec("deal")
        sync.refresh_reference()
        try:
            run = sync.full(spec)
            assert sync.loaders == 3 and run.status == RunStatus.succeeded and run.rows_written == 8000
            assert run.cursor == 8000 and compare(sync, spec).ok
        finally:
            app.extensions["db.session"].remove()
            app.extensions["db.engine"].dispose()
            sandbox.stop()


def test_operating_time_limit_inside_batches_waits_and_reads_on(app, db, portal, sandbox):
    """A large portal spends its operating time mid-sync: the pages refused with OPERATION_TIME_LIMIT inside a
    batch are read after the wait, from the last id; nothing is skipped, nothing read twice is lost."""
    from sandbox.limits import Limiter

    sync = service.open_sync(portal)
    spec = sync.spec("deal")
    sync.refresh_reference()
    sync.prepare(spec)
    limiter = sandbox.portal.limiter = Limiter("standard", operating_limit=0.02)  # two keyset pages' worth
    waits = []

    def time_passes(seconds):
        waits.append(seconds)
        limiter.reset()  # the operating window moved on

    sync.client._sleep = time_passes
    run = sync.full(spec, restart=True)
    assert run.status == RunStatus.succeeded, run.error
    assert run.rows_read == 160 and len(waits) >= 1 and all(w > 0 for w in waits)
    sandbox.portal.limiter = Limiter("off", operating_limit=0)  # the checker reads without limits
    assert check(portal, "deal").portal_rows == 160

    # Events re-read by id meet the limit too: the refused commands are sent again, their ids not taken as deleted.
    sandbox.portal.limiter = limiter
    limiter.reset()
    limiter.operating_limit = 0.006  # two by-id commands' worth
    waits.clear()
    db.execute(text(f"UPDATE portal_{portal.id}.deals SET title = 'stale', raw = raw - 'title'"))
    run = sync.apply_ids(spec, range(1, 161))
    assert run.status == RunStatus.succeeded, run.error
    assert run.rows_deleted == 0 and run.rows_written == 160 and waits  # (the wait reset the counters)
    sandbox.portal.limiter = Limiter("off", operating_limit=0)
    assert check(portal, "deal").portal_rows == 160


def test_keyset_reading_gives_up_on_a_limit_that_never_lifts_and_never_hides_other_errors():
    from app.bitrix.errors import BatchCommandError, RateLimited
    from app.sync import extract

    class Gateway:
        def __init__(self, code):
            self.code, self.pauses = code, 0

        def batch(self, commands, halt=False):
            exc = BatchCommandError("p0", self.code, "refused", method="crm.item.list")
            exc.errors, exc.results = {k: {"error": self.code} for k in commands}, {}
            raise exc

        def pause(self, code, method):
            self.pauses += 1

    stuck = Gateway("OPERATION_TIME_LIMIT")
    with pytest.raises(RateLimited):
        list(extract.keyset_pages(stuck, "crm.item.list", {"entityTypeId": 2}))
    assert stuck.pauses == extract.MAX_IDLE_PAUSES
    broken = Gateway("INTERNAL_SERVER_ERROR")  # not a limit: raised at once, no waiting
    with pytest.raises(BatchCommandError):
        list(extract.read_by_ids(broken, "crm.item.list", {"entityTypeId": 2}, [1, 2, 3]))
    assert broken.pauses == 0


def test_one_event_applying_job_per_portal_at_a_time(app, portal):
    """The follow-up apply job waits for the running one instead of reading the same pending events beside it."""
    import threading
    import time

    held, order = threading.Event(), []

    def first():
        with app.app_context(), service._apply_lock(portal.id):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    def second():
        held.wait(5)
        with app.app_context(), service._apply_lock(portal.id):
            order.append("second in")
        with app.app_context(), service._apply_lock(portal.id + 1):  # another portal's lock is its own
            order.append("other portal")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["first done", "second in", "other portal"]
