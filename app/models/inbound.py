"""What portals send to Hub24: recorded events (for the sync issue) and robot invocations (for integrations).

`PortalEvent` rows are the hand-over point between event intake and sync: `process_event` writes one row per
received CRM/user event; the sync code reads rows whose `consumed_at` is null, coalesces them by entity type,
and stamps `consumed_at`. `RobotInvocation` rows record every verified robot call; the integration handlers
(bridge, Alma) pick them up by id.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..crypto import EncryptedText
from .base import Base, utcnow


class PortalEvent(Base):
    """One event a portal delivered (ONCRM*, ONUSERADD...), recorded by the `events` queue worker."""

    __tablename__ = "portal_events"
    __table_args__ = (
        UniqueConstraint("portal_id", "dedupe_key", name="uq_portal_events_portal_id_dedupe_key"),
        Index("ix_portal_events_pending", "portal_id", "entity_type", "consumed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    event_name: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))  # deal, lead, contact, company, dynamic:<id>, user
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)  # the event's `data` block (ids; never tokens)
    dedupe_key: Mapped[str] = mapped_column(String(160))  # the same delivery twice is one row
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    consumed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # set by sync once applied


class RobotInvocation(Base):
    """One verified call of a robot handler; `event_token` (encrypted) answers it via bizproc.event.send."""

    __tablename__ = "robot_invocations"
    __table_args__ = (UniqueConstraint("portal_id", "workflow_id", "code",
                                       name="uq_robot_invocations_portal_id_workflow_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(128))
    document_id: Mapped[list] = mapped_column(JSON, default=list)
    document_type: Mapped[list] = mapped_column(JSON, default=list)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    event_token: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    use_subscription: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(32), default="received")  # received | queued | done | failed | no_handler
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
