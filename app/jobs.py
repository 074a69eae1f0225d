"""RQ wiring: queue names, retry policies, enqueueing, the worker class and the periodic-job table.

Jobs take ids, never ORM objects, run inside an app context (the worker pushes one), and let failures
raise so RQ's `Retry` policy can retry them. Periodic work is listed once, in `PERIODIC`, and the
`flask cron` command registers exactly that list with RQ's cron scheduler.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.exceptions import DuplicateJobError
from rq.job import Job

# Queue names (DESIGN.md): one per kind of work so slow syncs never delay event intake.
EVENTS, SYNC, CHARTS, INTEGRATIONS, MAINTENANCE = "events", "sync", "charts", "integrations", "maintenance"
QUEUES: tuple[str, ...] = (EVENTS, SYNC, CHARTS, INTEGRATIONS, MAINTENANCE)

# Retry policies as named values.
RETRY_EVENT = Retry(max=5, interval=[2, 10, 30, 120, 600])  # event intake must not lose a change
RETRY_SYNC = Retry(max=4, interval=[30, 120, 600, 1800])
RETRY_OUTBOUND = Retry(max=3, interval=[10, 60, 300])  # partner portal, Alma PMS
RETRY_NONE = None

DEFAULT_TIMEOUT = {EVENTS: 300, SYNC: 6 * 3600, CHARTS: 180, INTEGRATIONS: 600, MAINTENANCE: 1800}


def redis_connection() -> Redis:
    """The app's Redis connection (built in create_app)."""
    return current_app.extensions["redis"]


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """The RQ queue `name`; raises ValueError for a name not in QUEUES."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUES)}")
    return Queue(name, connection=connection or redis_connection(), default_timeout=DEFAULT_TIMEOUT[name])


ACTIVE_STATES = ("queued", "started", "deferred", "scheduled")


def job_key(*parts: Any) -> str:
    """A deterministic job id from parts (RQ allows letters, digits, `_` and `-` only)."""
    raw = "-".join(str(p) for p in parts)
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)
    if clean != raw or len(clean) > 120:  # keep distinct inputs distinct after cleaning
        clean = f"{clean[:100]}-{hashlib.sha1(raw.encode()).hexdigest()[:12]}"
    return clean


def enqueue(queue_name: str, func: Callable[..., Any] | str, *args: Any, job_id: str | None = None,
            retry: Retry | None = None, meta: dict | None = None, follow_up: bool = False, **kwargs: Any) -> Job:
    """Enqueue `func(*args, **kwargs)` on `queue_name`.

    A deterministic `job_id` de-duplicates: while a job with that id is queued or running, enqueueing
    it again returns the existing job instead of adding a second one. With `follow_up`, new work that
    arrives while that job is already *running* (it may have read its input already) gets one queued
    follow-up job (`<job_id>-next`), so it is never left to wait for a periodic sweep.
    """
    if follow_up and job_id:
        running = Job.fetch_many([job_id], connection=redis_connection())[0]
        if running is not None and running.get_status(refresh=False) == "started":
            job_id = f"{job_id}-next"
    q = get_queue(queue_name)
    options = {"job_id": job_id, "retry": retry, "meta": meta or {}, "args": args, "kwargs": kwargs}
    if not job_id:
        return q.enqueue(func, **options)
    for _ in range(3):
        try:
            return q.enqueue(func, unique=True, **options)  # atomic: no second job with this id
        except DuplicateJobError:
            existing = Job.fetch_many([job_id], connection=q.connection)[0]
            if existing is None:
                continue
            if existing.get_status(refresh=False) in ACTIVE_STATES:
                return existing
            existing.delete()  # a finished or failed run of the same work: start a new one
    raise RuntimeError(f"could not enqueue job {job_id}: it keeps being replaced concurrently")


class _AppContextJobs:
    """Mixin for RQ workers: jobs run inside the Flask app context.

    In a forked work horse the parent's pooled database connections are dropped first (a connection
    must never be shared across a fork); the app context's teardown removes the session after the job.
    """

    flask_app: Flask | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._parent_pid = os.getpid()

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        app = self.flask_app
        assert app is not None, "AppWorker.flask_app must be set"
        if os.getpid() != self._parent_pid:  # in a forked work horse
            app.extensions["db.engine"].dispose(close=False)
        with app.app_context():
            return super().perform_job(job, queue, *args, **kwargs)  # type: ignore[misc]


# Queues whose jobs run in the worker process itself, not in a forked work horse. Event intake jobs only
# record a row and queue the coalescing apply job (milliseconds); forking a horse for each cost several
# times that, so a burst of 10,000 events took minutes to record while sync jobs waited behind them.
INLINE_QUEUES = frozenset({EVENTS})


class AppWorker(_AppContextJobs, Worker):
    """The production worker: each job in a forked work horse, inside the app context (jobs of
    INLINE_QUEUES run in the worker process: they are short, and a fork costs more than they do)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        if queue.name in INLINE_QUEUES:
            return SimpleWorker.execute_job(self, job, queue)  # type: ignore[arg-type]
        return super().execute_job(job, queue)


class AppSimpleWorker(_AppContextJobs, SimpleWorker):
    """The same, running jobs in the worker process itself (no fork): for debugging and tests."""


@dataclass(frozen=True)
class Periodic:
    """One periodic job: what to run, where, and how often (seconds or a cron expression)."""

    name: str
    func: Callable[..., Any]
    queue: str
    interval: int | None = None
    cron: str | None = None
    timeout: int | None = None


def periodic_jobs() -> list[Periodic]:
    """Every periodic job of Hub24, in one place."""
    from . import maintenance
    from .bitrix import reconcile, tokens
    from .sync import offline
    from .sync import service as sync_service
    from .users import service as users_service

    return [
        Periodic("scheduler-heartbeat", maintenance.scheduler_heartbeat, MAINTENANCE, interval=60),
        Periodic("clean-job-registries", maintenance.clean_job_registries, MAINTENANCE, interval=3600),
        # refresh tokens live 180 days; keep idle portals' grants alive (active ones refresh on their own)
        Periodic("token-upkeep", tokens.upkeep_idle_tokens, MAINTENANCE, interval=6 * 3600),
        # each portal's request-rate plan from app.info (a portal may move to or from Enterprise)
        Periodic("portal-plans", reconcile.refresh_plans, MAINTENANCE, interval=6 * 3600),
        # Hub24's user directory: queues (on sync) each portal's daily sync at its configured time
        Periodic("users-daily-sync", users_service.schedule_daily_syncs, MAINTENANCE, interval=600),
        # the CRM mirror: incremental syncs when due, a safety net for events, the offline queue, reconciliation
        Periodic("sync-due", sync_service.schedule_due_syncs, SYNC, interval=60),
        Periodic("sync-events-sweep", sync_service.sweep_pending_events, SYNC, interval=60),
        Periodic("sync-offline-drain", offline.drain_all, SYNC, interval=120),
        Periodic("sync-reconcile", sync_service.reconcile_all, SYNC, interval=6 * 3600),
    ]


def build_cron(connection: Redis) -> CronScheduler:
    """A cron scheduler with every job of `periodic_jobs()` registered."""
    scheduler = CronScheduler(connection=connection, name="hub24-cron")
    for p in periodic_jobs():
        scheduler.register(p.func, p.queue, interval=p.interval, cron=p.cron,
                           job_timeout=p.timeout or DEFAULT_TIMEOUT[p.queue], name=p.name)
    return scheduler
