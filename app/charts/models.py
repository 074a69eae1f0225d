"""The question log: every AI chart question a portal asked, what the AI answered and how it ended.

It backs the page's "recent questions" and shows an administrator what ran. Answers themselves are
cached in Redis (ai.py); this table keeps the trail.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models.base import Base, utcnow


class ChartQuestion(Base):
    __tablename__ = "chart_questions"
    __table_args__ = (Index("ix_chart_questions_portal_created", "portal_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the Bitrix24 user who asked (frame calls)
    question: Mapped[str] = mapped_column(Text)
    question_hash: Mapped[str] = mapped_column(String(40))  # sha1 of the normalised question
    schema_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, answered, failed
    job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sql: Mapped[str | None] = mapped_column(Text, nullable=True)
    spec: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # chart type, axes, title, explanation
    error: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
