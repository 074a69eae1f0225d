"""Sync as the rest of Hub24 sees it: start runs, read status and settings, apply pending events.

Views, CLI commands and jobs call these functions; each takes ids and loads what it needs.
"""
from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import func, select

from ..bitrix.errors import AuthLost
from ..db import db_session
from ..jobs import SYNC, RETRY_SYNC, enqueue, job_key
from ..models.portal import Portal, PortalStatus
from ..models.sync import RunStatus, SyncMode, SyncRun, SyncState
from .engine import PortalSync
from .entities import entity_for_event

log = logging.getLogger("hub24.sync")
MODES = ("full", "incremental", "reconcile")


class SyncRefused(Exception):
    """The portal cannot be synced now (needs reinstalling, uninstalled, unknown entity); the message says why."""


def _portal(portal_id: int) -> Portal:
    portal = db_session().get(Portal, portal_id)
    if portal is None:
        raise SyncRefused(f"portal {portal_id} does not exist")
    return portal


def pause_reason(portal: Portal) -> str | None:
    """Why a portal's sync is paused, or None."""
    if portal.status == PortalStatus.uninstalled:
        return "Hub24 is uninstalled from this portal"
    if portal.needs_reinstall or portal.status == PortalStatus.needs_reinstall:
        return f"the portal needs reinstalling: {portal.needs_reinstall_reason or 'authorisation lost'}"
    return None


def open_sync(portal: Portal, progress: Callable[[SyncRun], None] | None = None) -> PortalSync:
    """A PortalSync for `portal` with its gateway client (and more for concurrent reads)."""
    from flask import current_app

    from ..bitrix.client import client_for

    from rq import get_current_job

    from ..bitrix.ratelimit import Limits

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # A cloud portal: half of Hub24's burst for one full sync's windows (events and pages still find room in
    # the bucket), all of them in flight at once, since each batch call spends seconds of server time. An
    # unlimited (on-premise) portal: calls cost no budget and the work is CPU on both sides, so a few calls
    # in flight keep the loaders busy without holding many parsed answers in memory.
    burst = Limits.for_plan(portal.plan).burst
    windows = 24 if burst is None else max(1, min(24, burst // 2))
    job = get_current_job()
    return PortalSync(portal, client_for(portal.id), db_session(), progress=progress,
                      client_factory=lambda: client_for(portal.id), thread_context=app.app_context,
                      max_parallel=windows, fetch_threads=6 if burst is None else windows,
                      job_id=job.id if job is not None else None,
                      loaders=int(app.config.get("SYNC_LOADERS", 3)), loader_session=_new_session,
                      job_alive=rq_job_alive)


def _new_session():
    """A session on a connection of its own (full-sync loaders run beside the job's own session)."""
    from sqlalchemy.orm import Session

    from ..db import engine

    return Session(bind=engine(), expire_on_commit=False)


JOB_HEARTBEAT_GRACE = timedelta(seconds=150)  # RQ heartbeats a running job every 30 s (TTL 90 s)


def rq_job_alive(job_id: str) -> bool:
    """Whether the RQ job `job_id` is being worked on right now: started, by a worker that is still
    registered, with a recent heartbeat. True when Redis cannot tell (never abandon on a guess)."""
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    from rq.worker import Worker

    from ..jobs import redis_connection

    conn = redis_connection()
    try:
        job = Job.fetch(job_id, connection=conn)
        if job.get_status(refresh=False) != JobStatus.STARTED:
            return False
        if job.worker_name and not conn.exists(Worker.redis_worker_namespace_prefix + job.worker_name):
            return False
        beat = job.last_heartbeat
        if beat is not None:
            beat = beat if beat.tzinfo else beat.replace(tzinfo=timezone.utc)
            if datetime.now(timezone.utc) - beat > JOB_HEARTBEAT_GRACE:
                return False
        return True
    except NoSuchJobError:
        return False
    except RedisError:
        return True


def recover_interrupted() -> dict:
    """Clean up after workers that died mid-job (SIGKILL, lost machine, Redis or PostgreSQL cut).

    RQ's started-job registries are cleaned now, so a killed job with retries left is queued again (its
    run resumes from the saved cursor) instead of waiting for a worker's ten-minute maintenance; then
    every `running` sync run whose job is no longer worked on is marked abandoned.
    """
    from rq.registry import StartedJobRegistry

    from ..jobs import QUEUES, get_queue
    from .engine import abandon_stale_runs

    for name in QUEUES:
        queue = get_queue(name)
        StartedJobRegistry(queue=queue).cleanup()
    abandoned = abandon_stale_runs(db_session(), job_alive=rq_job_alive)
    return {"abandoned": abandoned}


def _record_paused(portal: Portal, entity: str, mode: SyncMode, reason: str) -> SyncRun:
    now = datetime.now(timezone.utc)
    run = SyncRun(portal_id=portal.id, entity=entity, mode=mode, status=RunStatus.paused, error=reason,
                  started_at=now, finished_at=now)
    db_session().add(run)
    db_session().commit()
    return run


def run_sync(portal_id: int, entity: str, mode: str = "incremental", *, restart: bool = False,
             progress: Callable[[SyncRun], None] | None = None) -> SyncRun:
    """Run one sync of `entity` in `mode` now (in this process). Raises SyncRefused for an unknown entity."""
    if mode not in MODES:
        raise SyncRefused(f"unknown sync type {mode!r}; use one of {', '.join(MODES)}")
    portal = _portal(portal_id)
    reason = pause_reason(portal)
    if reason:
        return _record_paused(portal, entity, SyncMode(mode), reason)
    try:
        sync = open_sync(portal, progress)
        spec = sync.spec(entity)
        sync.refresh_reference()
        if mode == "full":
            return sync.full(spec, restart=restart)
        if mode == "reconcile":
            return sync.reconcile(spec)
        return sync.incremental(spec)
    except KeyError as exc:
        raise SyncRefused(str(exc.args[0])) from None
    except AuthLost as exc:
        db_session().rollback()
        return _record_paused(_portal(portal_id), entity, SyncMode(mode), f"the portal needs reinstalling: {exc.description or exc}")


def sync_entity(portal_id: int, entity: str, mode: str = "incremental", restart: bool = False) -> dict:
    """Job: one sync run; progress goes to the job's meta. Failures raise so RQ retries."""
    from rq import get_current_job

    job = get_current_job()

    def progress(run: SyncRun) -> None:
        if job is not None:
            job.meta.update({"run_id": run.id, "rows_read": run.rows_read, "rows_written": run.rows_written,
                             "progress": run.progress})
            job.save_meta()

    run = run_sync(portal_id, entity, mode, restart=restart, progress=progress)
    return {"run_id": run.id, "status": run.status.value, "rows_read": run.rows_read,
            "rows_written": run.rows_written, "rows_deleted": run.rows_deleted, "calls": run.calls_made}


def enqueue_sync(portal_id: int, entity: str, mode: str = "incremental", restart: bool = False):
    """Queue a sync run; one job per portal, entity and mode at a time."""
    if mode not in MODES:
        raise SyncRefused(f"unknown sync type {mode!r}; use one of {', '.join(MODES)}")
    return enqueue(SYNC, sync_entity, portal_id, entity, mode, restart, job_id=job_key("sync", portal_id, entity, mode),
                   retry=RETRY_SYNC)


def sync_portal(portal_id: int, mode: str = "incremental") -> dict:
    """Job: refresh reference data, then queue one `mode` sync per mirrored entity (they run in parallel)."""
    portal = _portal(portal_id)
    reason = pause_reason(portal)
    if reason:
        return {"paused": reason}
    sync = open_sync(portal)
    sync.refresh_reference()
    disabled = set(db_session().scalars(select(SyncState.entity).where(SyncState.portal_id == portal_id,
                                                                         SyncState.enabled.is_(False))))
    jobs = [enqueue_sync(portal_id, spec.name, mode).id for spec in sync.entities() if spec.name not in disabled]
    return {"queued": jobs}


def enqueue_portal_sync(portal_id: int, mode: str = "incremental"):
    """Queue a sync of every entity of a portal (one planning job per portal and mode at a time)."""
    return enqueue(SYNC, sync_portal, portal_id, mode, job_id=job_key("sync-portal", portal_id, mode), retry=RETRY_SYNC)


def apply_pending_events(portal_id: int) -> dict:
    """Job: apply every recorded event of a portal, coalesced per entity type into batch reads.

    Loops until no event is pending, so events recorded while it runs are not left behind. As a job it
    holds the portal's apply lock (`_apply_lock`), so a follow-up job waits for the running one.
    """
    from rq import get_current_job

    portal = _portal(portal_id)
    reason = pause_reason(portal)
    if reason:
        return {"paused": reason}
    totals = {"events": 0, "read": 0, "deleted": 0, "calls": 0}

    in_job = get_current_job() is not None
    with _apply_lock(portal_id) if in_job else contextlib.nullcontext():
        return _apply_pending(portal, in_job, totals)


APPLY_LOCK_NS = 0x483234  # "H24": advisory-lock namespace of the per-portal event application


@contextlib.contextmanager
def _apply_lock(portal_id: int):
    """One event-applying job per portal at a time, across workers.

    The follow-up job queued while an apply job runs must not read the same pending events beside it (every
    event would cost its read twice): it waits here until the running one is done, then applies what was
    left. A session-level advisory lock on a connection of its own goes away with the worker if it dies.
    """
    from sqlalchemy import text

    from ..db import engine

    with engine().connect() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '15min'"))  # for this wait only
        conn.execute(text("SELECT pg_advisory_lock(:ns, :portal)"), {"ns": APPLY_LOCK_NS, "portal": portal_id})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :portal)"), {"ns": APPLY_LOCK_NS, "portal": portal_id})
            conn.commit()


def _apply_pending(portal: Portal, in_job: bool, totals: dict) -> dict:
    from ..bitrix.events import mark_consumed, pending_events

    portal_id = portal.id
    sync: PortalSync | None = None
    while True:
        if in_job:
            _await_burst(portal_id)
        events = pending_events(portal_id, limit=10000)
        if not events:
            return totals
        sync = sync or open_sync(portal)
        by_entity: dict[str, tuple[set[int], set[int]]] = {}
        consumed: list[int] = []
        for ev in events:
            name = entity_for_event(ev.entity_type)
            consumed.append(ev.id)
            if name is None or not (ev.entity_id or "").isdigit():
                continue  # users and others are handled by their own sync
            changed, deleted = by_entity.setdefault(name, (set(), set()))
            (deleted if ev.event_name.endswith("DELETE") else changed).add(int(ev.entity_id))
        for name, (changed, deleted) in by_entity.items():
            state = sync.state(name)
            if not state.enabled or not state.realtime:
                continue
            try:
                spec = sync.spec(name)
            except KeyError:
                log.warning("event for an unknown entity type skipped", extra={"entity": name})
                continue
            run = sync.apply_ids(spec, changed | deleted, deleted - changed)
            totals["read"] += run.rows_read
            totals["deleted"] += run.rows_deleted
            totals["calls"] += run.calls_made
        mark_consumed(consumed)
        db_session().commit()
        totals["events"] += len(consumed)


EVENTS_QUIET_S = 1.0  # a burst is over when no event arrived for this long...
EVENTS_MAX_WAIT_S = 10.0  # ...or when its oldest pending event has waited this long
EVENTS_FULL_READ = 2500  # ...or when one batch read (50 pages of 50) is filled


def _await_burst(portal_id: int) -> None:
    """Let a burst of events gather before reading them (the apply job only; direct calls apply at once).

    A mass change arrives as one delivery per record, ~100 per second; reading whatever had arrived each
    time cost one batch call per few dozen events. Waiting until the flow pauses, a full read's worth is
    pending, or the oldest event has waited EVENTS_MAX_WAIT_S turns 10,000 events into a few reads.
    """
    import time

    from ..models import PortalEvent

    session = db_session()
    while True:
        count, oldest, newest = session.execute(
            select(func.count(), func.min(PortalEvent.received_at), func.max(PortalEvent.received_at))
            .where(PortalEvent.portal_id == portal_id, PortalEvent.consumed_at.is_(None))).one()
        session.commit()  # end the read transaction: the next look must see rows committed meanwhile
        if not count or count >= EVENTS_FULL_READ:
            return
        now = datetime.now(timezone.utc)
        if (now - newest).total_seconds() >= EVENTS_QUIET_S or (now - oldest).total_seconds() >= EVENTS_MAX_WAIT_S:
            return
        time.sleep(0.25)


def status(portal_id: int) -> dict[str, Any]:
    """Per entity: settings, cursors, the last run of each mode and the run in progress."""
    session = db_session()
    portal = _portal(portal_id)
    states = {s.entity: s for s in session.scalars(select(SyncState).where(SyncState.portal_id == portal_id))}
    latest = session.execute(
        select(SyncRun).where(SyncRun.portal_id == portal_id, SyncRun.id.in_(
            select(func.max(SyncRun.id)).where(SyncRun.portal_id == portal_id).group_by(SyncRun.entity, SyncRun.mode)))
    ).scalars().all()
    entities: dict[str, dict] = {}
    for name, st in states.items():
        entities[name] = {"enabled": st.enabled, "interval_s": st.interval_s, "realtime": st.realtime,
                          "full_completed_at": _iso(st.full_completed_at), "watermark": _iso(st.watermark),
                          "last_reconcile_at": _iso(st.last_reconcile_at), "resume_cursor": st.full_cursor, "runs": {}}
    for run in latest:
        entities.setdefault(run.entity, {"runs": {}})["runs"][run.mode.value] = run_json(run)
    return {"portal": portal.member_id, "paused": pause_reason(portal), "entities": entities}


def run_json(run: SyncRun) -> dict:
    return {"id": run.id, "entity": run.entity, "mode": run.mode.value, "status": run.status.value,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
            "rows_read": run.rows_read, "rows_written": run.rows_written, "rows_deleted": run.rows_deleted,
            "calls": run.calls_made, "progress": run.progress, "error": run.error}


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


CONFIG_FIELDS = {"enabled": bool, "interval_s": int, "realtime": bool}


def get_config(portal_id: int) -> dict[str, dict]:
    """Settings per mirrored entity (defaults for entities not configured yet)."""
    portal = _portal(portal_id)
    sync = open_sync(portal)
    out = {}
    for spec in sync.entities():
        st = sync.state(spec.name)
        out[spec.name] = {"title": spec.title, "enabled": st.enabled, "interval_s": st.interval_s, "realtime": st.realtime}
    db_session().commit()
    return out


def put_config(portal_id: int, changes: dict[str, dict]) -> dict[str, dict]:
    """Apply settings; raises SyncRefused naming the first bad entity or value. Nothing changes on error."""
    portal = _portal(portal_id)
    sync = open_sync(portal)
    known = {s.name for s in sync.entities()}
    for entity, values in changes.items():
        if entity not in known:
            raise SyncRefused(f"unknown entity {entity!r}; known: {', '.join(sorted(known))}")
        if not isinstance(values, dict) or not values:
            raise SyncRefused(f"{entity}: expected an object with any of {', '.join(CONFIG_FIELDS)}")
        for key, value in values.items():
            typ = CONFIG_FIELDS.get(key)
            if typ is None:
                raise SyncRefused(f"{entity}.{key}: unknown setting; use {', '.join(CONFIG_FIELDS)}")
            if typ is bool and not isinstance(value, bool):
                raise SyncRefused(f"{entity}.{key}: expected true or false")
            if typ is int and (not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 86400):
                raise SyncRefused(f"{entity}.{key}: expected seconds between 60 and 86400")
    for entity, values in changes.items():
        st = sync.state(entity)
        for key, value in values.items():
            setattr(st, key, value)
    db_session().commit()
    return get_config(portal_id)


def schedule_due_syncs() -> int:
    """Periodic job: queue an incremental sync for every enabled entity whose interval has passed."""
    session = db_session()
    now = datetime.now(timezone.utc)
    n = 0
    for portal in session.scalars(select(Portal).where(Portal.status == PortalStatus.active)):
        for st in session.scalars(select(SyncState).where(SyncState.portal_id == portal.id, SyncState.enabled)):
            last = st.last_incremental_at or st.full_completed_at
            if last is None or now - last >= timedelta(seconds=st.interval_s):
                enqueue_sync(portal.id, st.entity, "incremental")
                n += 1
    return n


def reconcile_all() -> int:
    """Periodic job: queue a reconciliation (id-set diff, deletions included) of every active portal.

    Each portal's planning job queues one reconcile per entity the portal has now (smart processes
    included), except entities switched off; an entity whose first full sync never finished (its job
    killed, say) is reconciled too, which loads it. Interrupted runs are cleaned up first
    (`recover_interrupted`), so none is left reading `running`. Returns how many portals were queued."""
    recover_interrupted()
    session = db_session()
    n = 0
    for portal_id in session.scalars(select(Portal.id).where(Portal.status == PortalStatus.active)).all():
        enqueue_portal_sync(portal_id, "reconcile")
        n += 1
    return n


def sweep_pending_events() -> int:
    """Periodic job: queue event application for portals with events still pending (a safety net)."""
    from ..models import PortalEvent

    recover_interrupted()
    session = db_session()
    ids = session.scalars(select(PortalEvent.portal_id).where(PortalEvent.consumed_at.is_(None)).distinct()).all()
    for pid in ids:
        enqueue(SYNC, apply_pending_events, pid, job_id=job_key("events-apply", pid), retry=RETRY_SYNC)
    return len(ids)
