"""No lost events, end to end: Hub24 as real processes against a sandbox that loses events, while its
worker is killed and its Redis and PostgreSQL restart. After the next reconciliation the mirror equals the
portal (checker: app.sync.verify.compare), no sync run reads `running`, and no event is left pending.

Everything runs in its own processes (devtools.stack): dedicated embedded PostgreSQL and Redis under
var/e2e/ (restarting them disturbs no other test), a sandbox (~1,500 deals, limits off, a little latency
so a full sync lasts long enough to be killed), gunicorn on a free loopback port (the sandbox delivers
events to it) and two RQ workers (`python -m flask --app wsgi worker`). No timing is asserted; waits are
bounded so a broken product fails instead of hanging.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from devtools.stack import Stack, wait_until

pytestmark = pytest.mark.slow

DEALS = 1500


@pytest.fixture(scope="module")
def stack():
    st = Stack(name="e2e", data_size=DEALS, limits="off", latency_ms=60, workers=2, seed=21)
    st.start()
    try:
        yield st
    finally:
        st.stop()


def _runs(st: Stack):
    from app.models.sync import SyncRun

    with st.app_context() as s:
        return s.scalars(select(SyncRun).where(SyncRun.portal_id == st.portal_id).order_by(SyncRun.id)).all()


def _worker_index_running(st: Stack, job_id: str) -> int | None:
    """Which of the stack's workers is running RQ job `job_id` (None when none is)."""
    from rq.job import Job
    from rq.worker import Worker

    with st.app_context():
        from app.jobs import redis_connection

        conn = redis_connection()
        job = Job.fetch(job_id, connection=conn)
        if job.get_status() != "started" or not job.worker_name:
            return None
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=conn)
    if worker is None:
        return None
    for name, proc in st.procs.items():
        if name.startswith("worker") and proc.pid == worker.pid:
            return int(name[len("worker"):])
    return None


def _kill_mid_full_sync(st: Stack) -> int:
    """SIGKILL the worker running the deals' full sync after it loaded its first chunk; returns the run id.

    Tries again (a restarted full sync) if a run finished before it could be caught."""
    from app.jobs import job_key
    from app.models.sync import RunStatus, SyncMode
    from app.sync import service

    job_id = job_key("sync", st.portal_id, "deal", "full")
    seen = 0
    for attempt in range(8):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            deal_full = [r for r in _runs(st) if r.entity == "deal" and r.mode == SyncMode.full and r.id > seen]
            running = [r for r in deal_full if r.status == RunStatus.running and (r.rows_read > 0 or attempt >= 4)]
            if running:
                idx = _worker_index_running(st, job_id)
                if idx is not None:
                    st.kill_worker(idx)
                    st.start_worker(idx)
                    victim = next(r for r in _runs(st) if r.id == running[-1].id)
                    if victim.status == RunStatus.running:
                        return victim.id  # killed mid-run (it had not finished before the kill landed)
                    seen = max(r.id for r in _runs(st) if r.entity == "deal")
                    break
            if any(r.status != RunStatus.running for r in deal_full):
                seen = max(r.id for r in deal_full)
                break  # finished before it could be caught: run it again
            time.sleep(0.01)
        with st.app_context():
            service.enqueue_sync(st.portal_id, "deal", "full", restart=True)
        time.sleep(0.2)
    raise AssertionError("could not catch a running full sync of deals to kill its worker")


def _pending_events(st: Stack) -> int:
    from app.models import PortalEvent

    with st.app_context() as s:
        return s.scalar(select(func.count()).select_from(PortalEvent).where(
            PortalEvent.portal_id == st.portal_id, PortalEvent.consumed_at.is_(None)))


def _queues_idle(st: Stack) -> bool:
    from rq.registry import StartedJobRegistry

    with st.app_context():
        from app.jobs import QUEUES, get_queue

        for name in QUEUES:
            q = get_queue(name)
            if q.count or StartedJobRegistry(queue=q).get_job_ids():
                return False
            if q.scheduled_job_registry.get_job_ids() or q.deferred_job_registry.get_job_ids():
                return False
    return True


def _dump(st: Stack) -> None:
    """What the queues and runs look like (printed when a wait times out)."""
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    with st.app_context():
        from app.jobs import QUEUES, get_queue

        for name in QUEUES:
            q = get_queue(name)
            ids = {"queued": q.job_ids[:5], "started": StartedJobRegistry(queue=q).get_job_ids(),
                   "scheduled": q.scheduled_job_registry.get_job_ids(), "failed": q.failed_job_registry.get_job_ids()}
            print(name, q.count, ids)
        job = Job.fetch(f"sync-{st.portal_id}-contact-full", connection=get_queue("sync").connection)
        print("contact job", job.get_status(), job.worker_name, job.enqueued_at, job.started_at, job.exc_info and job.exc_info[-300:])
    print("runs:", [(r.id, r.entity, r.mode.value, r.status.value, r.error) for r in _runs(st)][-30:])
    print("pending events:", _pending_events(st), "dead:", st.dead())


def test_mirror_survives_lost_events_killed_worker_and_restarts(stack):
    st = stack
    from app.models.sync import RunStatus, SyncMode

    # 1. The install's full sync: kill the worker mid-way through the deals (SIGKILL, work horse too).
    killed_run = _kill_mid_full_sync(st)

    # 2. The portal loses 5% of its online event deliveries from now on.
    st.sandbox.set_delivery_faults(drop_share=0.05, seed=6)
    deal_ids = list(range(1, DEALS + 1))

    # 3. A burst of updates and deletes while events are being lost; Redis restarts in the middle of it.
    st.sandbox.bulk_update(2, deal_ids[0:300], {"title": "Burst A {id}", "opportunity": 1234.5})
    st.sandbox.bulk_delete(2, deal_ids[300:340])
    st.restart_redis(down_seconds=2)
    st.sandbox.bulk_update(2, deal_ids[340:600], {"title": "Burst B {id}"})
    st.sandbox.bulk_update(3, list(range(1, 201)), {"name": "Renamed {id}"})
    st.sandbox.bulk_delete(3, list(range(201, 221)))
    st.sandbox.bulk_delete(1, list(range(1, 21)))

    # 4. PostgreSQL restarts while a run is loading (a full sync of contacts started for the purpose).
    before = max(r.id for r in _runs(st))
    with st.app_context():
        from app.sync import service

        service.enqueue_sync(st.portal_id, "contact", "full", restart=True)
    try:
        wait_until(lambda: any(r.id > before and r.entity == "contact" and r.mode == SyncMode.full
                               and r.status == RunStatus.running for r in _runs(st)),
                   240, interval=0.02, what="a running contact full sync")
    except TimeoutError:
        _dump(st)
        raise
    st.restart_postgres(down_seconds=2)
    st.sandbox.bulk_update(2, deal_ids[600:900], {"title": "Burst C {id}", "stageId": "WON"})
    st.sandbox.bulk_delete(2, deal_ids[900:930])
    assert st.sandbox.flush(timeout=120), "the sandbox could not deliver its queued events"

    lost = [d for d in st.sandbox.deliveries(kind="event") if d["status"] == "dropped"]
    assert lost, "the sandbox was expected to drop some event deliveries"

    # Every process survived the restarts (workers and web reconnect rather than exit).
    assert st.dead() == [], f"processes exited: {st.dead()}"

    # 5. The next reconciliation, run by the workers, plus the pending-events safety net.
    with st.app_context():
        from app.sync import service

        service.sweep_pending_events()
        queued = service.reconcile_all()
    assert queued == 1

    def settled() -> bool:
        runs = _runs(st)
        reconciled = {r.entity for r in runs if r.mode == SyncMode.reconcile and r.status == RunStatus.succeeded}
        return ({"deal", "lead", "contact", "company"} <= reconciled and _pending_events(st) == 0
                and _queues_idle(st))

    def settled_after_sweep() -> bool:
        # What the periodic sweep does every minute: requeue jobs whose worker died (once RQ stops hearing
        # their heartbeat), abandon their runs, queue application of events still pending.
        with st.app_context():
            from app.sync import service

            service.sweep_pending_events()
        return settled() and not any(r.status == RunStatus.running for r in _runs(st))

    try:
        wait_until(settled_after_sweep, 300, interval=3,
                   what="reconciliation, event application, every job finished and no run left running")
    except TimeoutError:
        print("runs:", [(r.id, r.entity, r.mode.value, r.status.value, r.error) for r in _runs(st)][-30:])
        print("pending events:", _pending_events(st), "dead:", st.dead())
        raise

    # 6. The checker: every mirrored entity equals the portal, row by row and field by field.
    with st.app_context():
        from app.sync import service, verify

        sync = service.open_sync(service._portal(st.portal_id))
        sync.refresh_reference()
        results = [verify.compare(sync, spec) for spec in sync.entities()]
    bad = [c.summary() for c in results if not c.ok]
    assert not bad, "mirror differs from the portal:\n" + "\n".join(bad)
    assert {c.entity for c in results} >= {"deal", "lead", "contact", "company"}

    runs = _runs(st)
    assert not [r.id for r in runs if r.status == RunStatus.running]
    killed = next(r for r in runs if r.id == killed_run)
    assert killed.status == RunStatus.abandoned, (killed.status, killed.error)
    assert _pending_events(st) == 0
    assert st.dead() == [], f"processes exited: {st.dead()}"
