"""Sync runs: full (resumable), incremental, real-time (coalesced events) and reconciliation.

Every run is a `SyncRun` row whose counters are committed with each chunk, so the UI shows live
progress and a crash loses at most one chunk; a full sync resumes from `SyncState.full_cursor`. Writes
go through the caller's session: one commit per chunk in production, a savepoint per chunk in tests.
"""
from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..models.portal import Portal
from ..models.sync import RunStatus, SyncMode, SyncRun, SyncState
from . import extract, reference
from .columns import Column, columns_for, schema_version
from .entities import CLASSIC, EntitySpec, smart_process
from .load import Staged, delete_ids, load_records, rebuild_columns
from .loaders import Loaders
from .schema import ensure_entity_table, ensure_portal_schema, ident
from .transform import Labels

log = logging.getLogger(__name__)
OVERLAP = timedelta(minutes=5)  # incremental window overlap: clock skew and same-second edits
STALE_RUN = timedelta(minutes=15)  # a running run without a heartbeat this long is abandoned (> the longest
# rate-limit wait, 10 minutes until Bitrix24 frees operating time)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class PortalSync:
    """Sync of one portal: its client, session and mirror schema."""

    portal: Portal
    client: Any  # app.bitrix.client.PortalClient
    session: Session
    schema: str = ""
    labels: Labels | None = None
    columns: dict[str, list[Column]] = field(default_factory=dict)
    progress: Callable[[SyncRun], None] | None = None  # called after each chunk (CLI progress bar, job meta)
    client_factory: Callable[[], Any] | None = None  # more clients for concurrent reads (full sync)
    thread_context: Callable[[], Any] | None = None  # context each fetching thread runs in (app context)
    max_parallel: int = 16  # id windows of a full sync (batch calls it may take); Bitrix24's burst allows 50
    fetch_threads: int = 12  # batch calls in flight at once (each holds one parsed answer: ~20 MB per thread)
    loaders: int = 1  # connections loading a full sync's chunks at once (needs `loader_session`)
    loader_session: Callable[[], Session] | None = None  # a new session on its own connection, for loaders
    job_id: str | None = None  # the RQ job this sync runs in (recorded on every run it starts)
    job_alive: Callable[[str], bool] | None = None  # is the RQ job with this id still being worked on?

    def __post_init__(self) -> None:
        self.schema = ensure_portal_schema(self.session.connection(), self.portal.id)
        self.session.commit()
        self._open: set[int] = set()  # runs this object started and has not finished (nested runs)
        self._specs: list[EntitySpec] | None = None

    # -- what is mirrored ------------------------------------------------------------------
    def entities(self) -> list[EntitySpec]:
        """The classic entities plus every smart process of the portal (read once per PortalSync; a sync
        object lives for one job, and `refresh_reference` reads the list again)."""
        if self._specs is None:
            types = self.client.call("crm.type.list", {})
            types = types.get("types", []) if isinstance(types, dict) else (types or [])
            self._specs = [*CLASSIC, *(smart_process(int(t["entityTypeId"]),
                                                     t.get("title") or f"Smart process {t['entityTypeId']}")
                                       for t in types)]
        return list(self._specs)

    def spec(self, name: str) -> EntitySpec:
        for s in self.entities():
            if s.name == name:
                return s
        raise KeyError(f"unknown entity {name!r}")

    def state(self, entity: str) -> SyncState:
        st = self.session.scalar(select(SyncState).where(SyncState.portal_id == self.portal.id, SyncState.entity == entity))
        if st is None:
            st = SyncState(portal_id=self.portal.id, entity=entity)
            self.session.add(st)
            self.session.flush()
        return st

    def refresh_reference(self) -> None:
        """Stages, pipelines, users and departments: small, read whole every time.

        When a stage, list value or pipeline was renamed, label columns of every mirrored table are re-derived.
        """
        self._specs = None
        specs = self.entities()
        counts = reference.sync_reference(self.client, self.session.connection(), self.schema, specs)
        self.labels = None
        self.session.commit()
        if counts["labels_changed"]:
            mirrored = set(self.session.connection().execute(text(f"SELECT table_name FROM {ident(self.schema)}.entities")).scalars())
            for spec in specs:
                if spec.table in mirrored:
                    self.rebuild_from_raw(spec, self.prepare(spec))

    def get_labels(self) -> Labels:
        if self.labels is None:
            self.labels = reference.load_labels(self.session.connection(), self.schema)
        return self.labels

    def prepare(self, spec: EntitySpec) -> list[Column]:
        """Read the entity's field metadata and bring its table in line (new, changed, removed fields)."""
        if spec.name in self.columns:
            return self.columns[spec.name]
        meta = self.client.call("crm.item.fields", {"entityTypeId": spec.entity_type_id, "useOriginalUfNames": "Y"})
        fields = meta.get("fields", meta) if isinstance(meta, dict) else {}
        cols = columns_for(fields, spec.stage_status_type)
        version = schema_version(cols)
        conn = self.session.connection()
        retyped = ensure_entity_table(conn, self.schema, spec.table, cols, entity=spec.name,
                                      entity_type_id=spec.entity_type_id, title=spec.title, version=version)
        state = self.state(spec.name)
        changed = state.schema_version not in (None, version)
        state.schema_version = version
        self.session.commit()
        self.columns[spec.name] = cols
        if retyped or changed:
            self.rebuild_from_raw(spec, cols)
        return cols

    def rebuild_from_raw(self, spec: EntitySpec, cols: list[Column]) -> int:
        """Re-derive every typed column from the stored raw records (after a field changed type or labels)."""
        n = rebuild_columns(self.session.connection(), self.schema, spec.table, cols)
        self.session.commit()
        return n

    # -- loading ---------------------------------------------------------------------------
    def load(self, spec: EntitySpec, cols: list[Column], records: list[dict]) -> int:
        """Upsert records with typed columns, labels, multi-fields and contact links; returns rows written."""
        return load_records(self.session.connection(), self.schema, spec.table, cols, records)

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, spec: EntitySpec, mode: SyncMode, job_id: str | None = None) -> SyncRun:
        self.abandon_stale_runs()
        run = SyncRun(portal_id=self.portal.id, entity=spec.name, mode=mode, job_id=job_id or self.job_id)
        self.session.add(run)
        self.session.commit()
        self._open.add(run.id)
        return run

    def abandon_stale_runs(self) -> int:
        """Mark runs whose worker died as abandoned (see `abandon_stale_runs` below)."""
        return abandon_stale_runs(self.session, self.portal.id, job_alive=self.job_alive,
                                  current_job_id=self.job_id, exclude=self._open)

    def checkpoint(self, run: SyncRun) -> None:
        run.heartbeat_at = utcnow()
        self.session.commit()
        if self.progress:
            self.progress(run)

    def finish(self, run: SyncRun, status: RunStatus = RunStatus.succeeded, error: str | None = None) -> SyncRun:
        self._open.discard(run.id)
        run.status = status
        run.error = error
        run.finished_at = utcnow()
        self.session.commit()
        return run

    def _guarded(self, run: SyncRun, body: Callable[[], None]) -> SyncRun:
        try:
            body()
        except BaseException as exc:  # record, then let it propagate so RQ retries
            self.session.rollback()
            self.finish(run, RunStatus.failed, f"{type(exc).__name__}: {exc}"[:2000])
            raise
        return self.finish(run)

    def full(self, spec: EntitySpec, *, restart: bool = False, job_id: str | None = None) -> SyncRun:
        """Read every record by keyset paging, resuming from the saved cursor; delete what the portal lost.

        The id range is split into windows read concurrently (up to `max_parallel` batch calls in flight,
        well inside Bitrix24's burst); this thread transforms and loads while the others wait on the network.
        The saved cursor is the end of the contiguous prefix of ids already loaded, so a resumed run never
        skips a window that had not finished.
        """
        run = self.start_run(spec, SyncMode.full, job_id)

        def body() -> None:
            cols = self.prepare(spec)
            state = self.state(spec.name)
            if restart:
                state.full_cursor = None
            resumed_from = state.full_cursor or 0
            top = extract.max_id(self.client, "crm.item.list", spec.list_params)
            run.calls_made += 1
            run.total_expected, run.cursor = top, resumed_from
            windows = extract.id_windows(resumed_from, top, calls_per_window=1, max_windows=self.max_parallel)
            threads = min(len(windows), self.fetch_threads)
            clients = [self.client] + [self.client_factory() for _ in range(threads - 1)] if self.client_factory else [self.client]
            reached = [lo for lo, _ in windows]  # per window: last id loaded
            seen = array("q")

            def landed(tag: tuple[int, extract.Chunk], written: int) -> None:
                index, chunk = tag
                run.rows_written += written
                reached[index] = windows[index][1] if chunk.done else chunk.cursor
                state.full_cursor = run.cursor = _contiguous(windows, reached)
                self.checkpoint(run)

            pool = (Loaders(self.loaders, self.loader_session, self.thread_context, self.schema, spec.table, cols)
                    if self.loaders > 1 and self.loader_session else None)
            try:
                for index, chunk in extract.parallel_keyset(clients, "crm.item.list", spec.list_params, windows,
                                                            thread_context=self.thread_context, prepare=Staged,
                                                            idle=lambda: self.checkpoint(run)):
                    run.calls_made += chunk.calls
                    run.rows_read += len(chunk.records)
                    seen.extend(chunk.records.ids)
                    if pool is None:
                        landed((index, chunk), self.load(spec, cols, chunk.records))
                    else:
                        for tag, written in pool.submit((index, chunk), chunk.records):
                            landed(tag, written)
                for tag, written in pool.drain() if pool else ():
                    landed(tag, written)
            finally:
                if pool is not None:
                    pool.close()
            if resumed_from == 0:
                run.rows_deleted += self._delete_missing(spec, seen)
            state.full_cursor = None
            state.full_completed_at = utcnow()
            state.watermark = self._max_modified(spec) or state.watermark
            self.session.commit()
            if resumed_from:
                # Rows below the resume point were not seen by this process: find deletions by id diff.
                rec = self.reconcile(spec)
                run.rows_deleted += rec.rows_deleted
                run.calls_made += rec.calls_made

        return self._guarded(run, body)

    def incremental(self, spec: EntitySpec, *, job_id: str | None = None) -> SyncRun:
        """Records modified since the watermark (minus an overlap), ordered by id."""
        run = self.start_run(spec, SyncMode.incremental, job_id)

        def body() -> None:
            cols = self.prepare(spec)
            state = self.state(spec.name)
            if state.watermark is None:
                state.watermark = self._max_modified(spec)
                if state.watermark is None:  # empty mirror: a full sync is the incremental
                    self.session.commit()
                    inner = self.full(spec)
                    run.rows_read, run.rows_written, run.calls_made = inner.rows_read, inner.rows_written, inner.calls_made
                    return
            since = (state.watermark - OVERLAP).isoformat()
            newest = state.watermark
            for chunk in extract.keyset_pages(self.client, "crm.item.list", spec.list_params,
                                              extra_filter={f">={spec.modified_field}": since}):
                run.calls_made += chunk.calls
                run.rows_read += len(chunk.records)
                run.rows_written += self.load(spec, cols, chunk.records)
                for r in chunk.records:
                    m = _parse_time(r.get(spec.modified_field))
                    if m and m > newest:
                        newest = m
                self.checkpoint(run)
            state.watermark = newest
            state.last_incremental_at = utcnow()

        return self._guarded(run, body)

    def apply_ids(self, spec: EntitySpec, ids: Iterable[int], deleted: Iterable[int] = (), *,
                  mode: SyncMode = SyncMode.realtime, job_id: str | None = None) -> SyncRun:
        """Re-read `ids` in batches (2,500 per call) and delete `deleted`; an id the portal no longer has is deleted."""
        run = self.start_run(spec, mode, job_id)

        def body() -> None:
            cols = self.prepare(spec)
            wanted = sorted({int(i) for i in ids} - {int(d) for d in deleted})
            gone = {int(d) for d in deleted}
            run.total_expected = len(wanted)
            for chunk in extract.read_by_ids(self.client, "crm.item.list", spec.list_params, wanted):
                run.calls_made += chunk.calls
                run.rows_read += len(chunk.records)
                run.rows_written += self.load(spec, cols, chunk.records)
                got = {int(r["id"]) for r in chunk.records}
                window = [i for i in wanted if i <= chunk.cursor]
                gone |= {i for i in window if i not in got}
                wanted = [i for i in wanted if i > chunk.cursor]
                self.checkpoint(run)
            run.rows_deleted += delete_ids(self.session.connection(), self.schema, spec.table, sorted(gone))

        return self._guarded(run, body)

    def reconcile(self, spec: EntitySpec, *, job_id: str | None = None) -> SyncRun:
        """Compare id sets and modification times with the portal; repair every difference, deletions included."""
        run = self.start_run(spec, SyncMode.reconcile, job_id)

        def body() -> None:
            cols = self.prepare(spec)
            params = {**spec.list_params, "select": [spec.id_field, spec.modified_field]}
            portal_rows: dict[int, str] = {}
            for chunk in extract.keyset_pages(self.client, "crm.item.list", params):
                run.calls_made += chunk.calls
                for r in chunk.records:
                    portal_rows[int(r["id"])] = str(r.get(spec.modified_field) or "")
                self.checkpoint(run)
            conn = self.session.connection()
            s, t = ident(self.schema), ident(spec.table)
            mirror = {i: m or "" for i, m in conn.execute(text(f"SELECT id, raw->>:f FROM {s}.{t}"), {"f": spec.modified_field})}
            stale = [i for i, m in portal_rows.items() if mirror.get(i) != m]
            gone = [i for i in mirror if i not in portal_rows]
            run.rows_read = len(portal_rows)
            for chunk in extract.read_by_ids(self.client, "crm.item.list", spec.list_params, stale):
                run.calls_made += chunk.calls
                run.rows_written += self.load(spec, cols, chunk.records)
                self.checkpoint(run)
            run.rows_deleted += delete_ids(self.session.connection(), self.schema, spec.table, gone)
            self.state(spec.name).last_reconcile_at = utcnow()

        return self._guarded(run, body)

    # -- helpers ---------------------------------------------------------------------------
    def _delete_missing(self, spec: EntitySpec, seen: array) -> int:
        conn = self.session.connection()
        s, t = ident(self.schema), ident(spec.table)
        have = [r[0] for r in conn.execute(text(f"SELECT id FROM {s}.{t}"))]
        seen_set = set(seen)
        return delete_ids(conn, self.schema, spec.table, [i for i in have if i not in seen_set])

    def _max_modified(self, spec: EntitySpec) -> datetime | None:
        conn = self.session.connection()
        s, t = ident(self.schema), ident(spec.table)
        value = conn.execute(text(f"SELECT max((raw->>:f)::timestamptz) FROM {s}.{t}"), {"f": spec.modified_field}).scalar()
        return value


def abandon_stale_runs(session: Session, portal_id: int | None = None, *,
                       job_alive: Callable[[str], bool] | None = None, current_job_id: str | None = None,
                       exclude: Iterable[int] = ()) -> int:
    """Mark `running` runs whose worker is gone as abandoned (all portals when `portal_id` is None).

    A run is dead when its heartbeat is older than STALE_RUN, when it was recorded by the job now running
    (`current_job_id`: a job runs its runs one after another, so an earlier attempt's run still marked
    running was cut off by a crash, a kill or a lost database), or when `job_alive` says its RQ job is no
    longer being worked on (finished, failed, queued for a retry, gone, or its worker stopped
    heartbeating). Without this a SIGKILLed worker's run would read `running` for STALE_RUN.
    Commits; returns how many were abandoned.
    """
    q = select(SyncRun).where(SyncRun.status == RunStatus.running)
    if portal_id is not None:
        q = q.where(SyncRun.portal_id == portal_id)
    skip = set(exclude)
    cutoff = utcnow() - STALE_RUN
    stale = []
    for run in session.scalars(q).all():
        if run.id in skip:
            continue
        hb = run.heartbeat_at if run.heartbeat_at.tzinfo else run.heartbeat_at.replace(tzinfo=timezone.utc)
        if hb < cutoff:
            stale.append(run)
        elif run.job_id and current_job_id and run.job_id == current_job_id:
            stale.append(run)
        elif run.job_id and job_alive is not None and not job_alive(run.job_id):
            stale.append(run)
    for run in stale:
        run.status = RunStatus.abandoned
        run.finished_at = utcnow()
        run.error = "worker stopped during the run; the next run resumed from the saved cursor"
    if stale:
        session.commit()
    return len(stale)


def _contiguous(windows: list[tuple[int, int]], reached: list[int]) -> int:
    """The highest id below which every window is fully loaded (the safe resume point)."""
    cursor = windows[0][0] if windows else 0
    for (lo, hi), got in zip(windows, reached):
        cursor = got
        if got < hi:
            break
    return cursor


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def iter_specs(sync: PortalSync, names: Iterable[str] | None = None) -> Iterator[EntitySpec]:
    specs = sync.entities()
    wanted = set(names) if names else None
    for spec in specs:
        if wanted is None or spec.name in wanted:
            yield spec
