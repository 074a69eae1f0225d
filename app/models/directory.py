"""The directory aggregate: Hub24's own users and departments per portal, and every directory sync run.

These are the app's users (roles, password hashes) in schema `public`, not the analytics copy of
`user.get` that the CRM mirror keeps in `portal_<id>.users`. A row is never deleted by a sync: a user
who leaves the portal is deactivated; a department that disappears is marked inactive.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, func)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

ROLES = ("admin", "manager", "employee")


class DirectoryUser(Base):
    """One Hub24 user of one portal. `password_hash` is unusable until `password_set_at` is set."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("portal_id", "bitrix_user_id", name="uq_users_portal_id_bitrix_user_id"),
        CheckConstraint("role IN ('admin', 'manager', 'employee')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    bitrix_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    position: Mapped[str | None] = mapped_column(String(255), nullable=True)
    departments: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)  # Bitrix24 department ids
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(16), default="employee")
    is_portal_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # as Bitrix24 last reported it
    password_hash: Mapped[str] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(nullable=True)  # None: no usable password
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(nullable=True)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.name, self.last_name) if p)

    def __repr__(self) -> str:
        return f"<DirectoryUser {self.portal_id}/{self.bitrix_user_id} {self.role}>"


# An e-mail names one user per portal, whatever its case (it is how a user signs in).
Index("uq_users_portal_email", DirectoryUser.portal_id, func.lower(DirectoryUser.email), unique=True,
      postgresql_where=DirectoryUser.email.isnot(None))


class DirectoryDepartment(Base):
    """One department of a portal's company structure (`department.get`), with its parent and head."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("portal_id", "bitrix_id", name="uq_departments_portal_id_bitrix_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    bitrix_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255), default="")
    parent_bitrix_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    head_bitrix_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sort: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DirectorySettings(Base):
    """Per-portal directory settings: when the daily sync runs and which roles may lack an e-mail."""

    __tablename__ = "directory_settings"

    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), primary_key=True)
    daily_at: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "HH:MM" UTC; None: the app default
    roles_without_email: Mapped[list] = mapped_column(JSON, default=lambda: ["employee"])
    last_daily_on: Mapped[str | None] = mapped_column(String(10), nullable=True)  # ISO date of the last daily run
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DirectoryRun(Base):
    """One directory sync: what triggered it, how it ended, and its report (created, updated, ...)."""

    __tablename__ = "directory_runs"
    __table_args__ = (Index("ix_directory_runs_portal_started", "portal_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(32))  # daily | api | cli | event
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | succeeded | failed
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
