"""The dashboards aggregate: saved dashboards and their charts, each user's recent questions, and the
per-portal settings the settings page edits (AI on or off, its model).

A dashboard belongs to one portal and, when it was saved from a frame whose user Bitrix24 named, to that
user (`user_id`); `shared` dashboards are visible to everyone in the portal. A widget stores what to run
again on refresh (a question for the AI, or a builder spec) and the last result it drew, so the grid shows
at once and refreshes every `refresh_s` seconds.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

WIDGET_KINDS = ("ask", "build")


class Dashboard(Base):
    __tablename__ = "dashboards"
    __table_args__ = (Index("ix_dashboards_portal_user", "portal_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # Bitrix24 user; None: API key
    title: Mapped[str] = mapped_column(String(200))
    refresh_s: Mapped[int] = mapped_column(Integer, default=0)  # 0: refreshed by hand only
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    widgets: Mapped[list["DashboardWidget"]] = relationship(
        back_populates="dashboard", cascade="all, delete-orphan", order_by="DashboardWidget.position",
        lazy="selectin")


class DashboardWidget(Base):
    __tablename__ = "dashboard_widgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # ask | build
    question: Mapped[str | None] = mapped_column(Text, nullable=True)  # kind=ask
    spec: Mapped[dict] = mapped_column(JSON, default=dict)  # kind=build: the /charts/build body
    chart_type: Mapped[str] = mapped_column(String(32), default="")
    result: Mapped[dict] = mapped_column(JSON, default=dict)  # last result: option, explanation, sql, columns, rows
    refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    dashboard: Mapped[Dashboard] = relationship(back_populates="widgets")


class RecentQuestion(Base):
    """A question a user asked (newest first in the page; trimmed to the last few per user)."""

    __tablename__ = "recent_questions"
    __table_args__ = (Index("ix_recent_questions_portal_user", "portal_id", "user_id", "asked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    question: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)


class PortalSettings(Base):
    """Per-portal switches the settings page edits. No row: the defaults (AI on when a key is configured)."""

    __tablename__ = "portal_settings"

    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), primary_key=True)
    ai_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ai_model: Mapped[str | None] = mapped_column(String(100), nullable=True)  # None: OPENAI_MODEL
    updated_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
