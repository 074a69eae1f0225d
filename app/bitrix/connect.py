"""Connecting a portal by an incoming webhook URL (`flask portal connect URL`), for users without an app.

The URL (`https://<portal>/rest/<user id>/<code>/`) is checked by calling the portal through it (`profile`,
`scope`); only then is the portal stored, with `connection_kind = webhook` and the URL encrypted. Sync,
charts and users work on such a portal; events, robots and placements need an installed app and are
refused with `NotAvailableForWebhook` (reconcile) or 403 (callbacks).

A webhook answer carries no `member_id`, so the portal's identity is derived from its domain
(`wh-<sha1(domain)>`); installing Hub24 as an app later creates the real, member_id-keyed portal.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import select

from ..db import db_session
from ..models import ConnectionKind, Portal, PortalStatus
from .errors import BitrixError

_HOOK_PATH = re.compile(r"^/rest/(\d+)/([A-Za-z0-9]{6,64})/?$")


class WebhookUrlError(ValueError):
    """The URL is not an incoming-webhook URL Hub24 can use; the message says why."""


@dataclass(frozen=True)
class Connected:
    portal_id: int
    member_id: str
    domain: str
    user_id: int
    admin: bool
    scopes: list[str]
    created: bool


def parse_webhook_url(url: str) -> tuple[str, str, int]:
    """(normalised URL, domain, user id) of an incoming-webhook URL; raises WebhookUrlError."""
    parsed = urlparse((url or "").strip())
    allow_http = current_app.config["B24_ALLOW_HTTP"]
    if parsed.scheme != "https" and not (allow_http and parsed.scheme == "http"):
        raise WebhookUrlError("the webhook URL must start with https:// (plain http only with B24_ALLOW_HTTP, sandbox)")
    m = _HOOK_PATH.match(parsed.path or "")
    if not parsed.netloc or not m or parsed.query or parsed.fragment:
        raise WebhookUrlError("expected an incoming-webhook URL like https://<portal>/rest/<user id>/<code>/")
    domain = parsed.netloc.lower()
    return f"{parsed.scheme}://{domain}/rest/{m.group(1)}/{m.group(2)}/", domain, int(m.group(1))


def webhook_member_id(domain: str) -> str:
    return "wh-" + hashlib.sha1(domain.encode()).hexdigest()[:40]


def connect_webhook(url: str) -> Connected:
    """Validate `url` against the portal and store (or update) the webhook-connected portal.

    Raises WebhookUrlError for a malformed URL, BitrixError (AuthError, TransportError...) when the portal
    does not accept it. Nothing is stored unless the portal answered.
    """
    from .client import client_for

    norm, domain, user_id = parse_webhook_url(url)
    session = db_session()
    member_id = webhook_member_id(domain)
    existing = session.scalar(select(Portal).where(Portal.member_id == member_id))
    portal = existing or Portal(member_id=member_id, domain=domain, registered={})
    portal.domain, portal.webhook_url = domain, norm
    portal.connection_kind, portal.status = ConnectionKind.webhook, PortalStatus.active
    portal.client_endpoint = norm
    portal.needs_reinstall, portal.needs_reinstall_reason = False, None
    session.add(portal)
    session.flush()
    try:
        client = client_for(portal.id, interactive=True)
        profile = client.call("profile", {})
        scopes = client.call("scope", {})
    except BitrixError:
        session.rollback()
        raise
    if not isinstance(profile, dict) or not isinstance(scopes, list):
        session.rollback()
        raise WebhookUrlError("the portal answered, but not like Bitrix24 (profile/scope)")
    portal.scopes = sorted(str(s) for s in scopes)
    portal.installed_at = portal.installed_at or portal.created_at
    session.commit()
    return Connected(portal.id, member_id, domain, user_id, bool(profile.get("ADMIN")), portal.scopes,
                     existing is None)
