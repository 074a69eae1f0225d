"""The portal aggregate: an installed Bitrix24 portal and its OAuth tokens."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import EncryptedText
from .base import Base, utcnow


class PortalStatus(str, enum.Enum):
    installing = "installing"  # install POST received, installFinish not yet confirmed
    active = "active"
    needs_reinstall = "needs_reinstall"
    uninstalled = "uninstalled"


class ConnectionKind(str, enum.Enum):
    oauth_app = "oauth_app"  # installed as a local or marketplace app
    webhook = "webhook"  # reached through an incoming webhook URL (no events, robots, placements)


class Portal(Base):
    """One Bitrix24 portal. Identity is `member_id`: domains change, member ids do not."""

    __tablename__ = "portals"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    domain: Mapped[str] = mapped_column(String(255))
    client_endpoint: Mapped[str] = mapped_column(String(512), default="")
    server_endpoint: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[PortalStatus] = mapped_column(Enum(PortalStatus, name="portal_status"), default=PortalStatus.installing)
    connection_kind: Mapped[ConnectionKind] = mapped_column(Enum(ConnectionKind, name="connection_kind"),
                                                           default=ConnectionKind.oauth_app)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    # rate-limit plan: standard | enterprise (read from app.info LICENSE_FAMILY by reconcile) | unlimited (an
    # on-premise portal without the REST limit, set by `flask portal plan`)
    plan: Mapped[str] = mapped_column(String(32), default="standard")
    application_token: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    installed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    install_finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    uninstalled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    needs_reinstall: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_reinstall_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What reconcile last registered that the portal cannot show back (bizproc.robot.list gives codes only):
    # {"robots": {code: fingerprint}}. Lets a second reconcile see "unchanged" without re-registering.
    registered: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    token: Mapped["PortalToken | None"] = relationship(back_populates="portal", uselist=False,
                                                       cascade="all, delete-orphan")

    @property
    def is_installed(self) -> bool:
        return self.status in (PortalStatus.installing, PortalStatus.active, PortalStatus.needs_reinstall)

    def __repr__(self) -> str:
        return f"<Portal {self.member_id} {self.domain} {self.status.value if self.status else '?'}>"


class PortalToken(Base):
    """The portal's OAuth pair. Both tokens are stored encrypted; refresh tokens are single-use."""

    __tablename__ = "portal_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), unique=True)
    access_token: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the Bitrix24 user who authorised
    refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # last refresh-token use
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    portal: Mapped[Portal] = relationship(back_populates="token")

    def __repr__(self) -> str:  # never print the tokens
        return f"<PortalToken portal={self.portal_id} expires_at={self.expires_at}>"
