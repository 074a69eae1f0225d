"""The sync aggregate: what is mirrored per portal and entity, and every run with its counters."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SyncMode(str, enum.Enum):
    full = "full"
    incremental = "incremental"
    realtime = "realtime"
    reconcile = "reconcile"


class RunStatus(str, enum.Enum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    paused = "paused"  # the portal needs reinstalling; nothing was attempted
    abandoned = "abandoned"  # the worker died mid-run; a later run resumed from the cursor


class SyncState(Base):
    """Per portal and entity: settings (enabled, interval, real-time) and cursors (full-sync resume point,
    incremental watermark, last reconciliation)."""

    __tablename__ = "sync_states"
    __table_args__ = (UniqueConstraint("portal_id", "entity", name="uq_sync_states_portal_id_entity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))  # deal, lead, contact, company, sp_<entityTypeId>
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_s: Mapped[int] = mapped_column(Integer, default=300)  # incremental sync period
    realtime: Mapped[bool] = mapped_column(Boolean, default=True)  # apply events as they arrive
    full_cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # last id loaded by an unfinished full sync
    full_completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    watermark: Mapped[datetime | None] = mapped_column(nullable=True)  # newest modification time mirrored
    last_incremental_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_reconcile_at: Mapped[datetime | None] = mapped_column(nullable=True)
    schema_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRun(Base):
    """One run of one mode for one entity: counters, outcome and live progress."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_portal_started", "portal_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    mode: Mapped[SyncMode] = mapped_column(Enum(SyncMode, name="sync_mode"))
    status: Mapped[RunStatus] = mapped_column(Enum(RunStatus, name="sync_run_status"), default=RunStatus.running)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)  # a stale heartbeat means the worker died
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    calls_made: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # last id read (keyset runs)
    total_expected: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # largest id, or ids to read
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)

    @property
    def progress(self) -> float | None:
        """0..1 when it can be told: keyset runs by id reached, id-list runs by rows read."""
        if self.status != RunStatus.running:
            return 1.0 if self.status == RunStatus.succeeded else None
        if not self.total_expected:
            return None
        done = self.cursor if self.cursor is not None else self.rows_read
        return round(min(1.0, done / self.total_expected), 4)
