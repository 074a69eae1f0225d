"""Install, update and uninstall: the lifecycle of Hub24 in one portal (PROTOCOL.md §1).

* `install_from_frame` — the install page frame POST (app with UI). The access token in `AUTH_ID` is proven
  with the OAuth server's `app.info`; the portal is stored by `member_id` with its tokens (encrypted),
  `APPLICATION_TOKEN`, endpoints and scopes, and stays `installing` until `finish_install` (the page calls
  `installFinish` through the JS SDK and tells us).
* `install_from_event` — `ONAPPINSTALL` (app without UI): the same, from `auth[...]`, finished at once.
* `update_from_event` — `ONAPPUPDATE`: proven by its access token, replaces the stored application token.
* `uninstall_from_event` — `ONAPPUNINSTALL`: the stored application token is the only proof; the portal is
  marked uninstalled and its tokens forgotten; with `data[CLEAN]=1` its mirrored data is dropped too
  (`drop_portal_data`, which later subsystems extend with `on_drop_portal_data`).

Reinstalling after an uninstall reuses the portal row (same `member_id`) and starts it afresh.
Callers reconcile after install/update (`app.bitrix.reconcile`). Nothing here commits half a change:
every function commits once at the end, or raises before touching the database.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from flask import current_app
from sqlalchemy import delete

from ..db import db_session
from ..models import ConnectionKind, Portal, PortalEvent, PortalStatus, PortalToken, RobotInvocation
from .payload import BadPayload, group, text
from .verify import (AppInfo, FrameRequest, VerificationFailed, find_portal, portal_for_application_token,
                     valid_member_id, verify_access_token)

log = logging.getLogger("hub24.install")

_DROPPERS: list[Callable[[Portal], None]] = []


def on_drop_portal_data(fn: Callable[[Portal], None]) -> Callable[[Portal], None]:
    """Register `fn(portal)` to run when a portal's data is dropped (uninstall with CLEAN=1)."""
    if fn not in _DROPPERS:
        _DROPPERS.append(fn)
    return fn


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _scopes(raw: str | tuple[str, ...]) -> list[str]:
    items = raw if isinstance(raw, tuple) else re.split(r"[,\s]+", raw or "")  # docs disagree: commas or spaces
    return sorted({s.strip() for s in items if s and re.fullmatch(r"[a-z_.]{1,40}", s.strip())})


def _server_endpoint() -> str:
    # Our own setting, never the payload's: a forged endpoint must not redirect token refreshes.
    return current_app.config["B24_OAUTH_URL"].rstrip("/") + "/rest/"


def _store(member_id: str, info: AppInfo, *, access_token: str, refresh_token: str, expires_at: datetime | None,
           application_token: str, status: PortalStatus) -> Portal:
    """Create or refresh the portal row and its token pair (not committed)."""
    session = db_session()
    portal = find_portal(member_id)
    now = _now()
    if portal is None:
        portal = Portal(member_id=member_id, domain=info.domain, registered={})
        session.add(portal)
    fresh = portal.status == PortalStatus.uninstalled or portal.connection_kind == ConnectionKind.webhook \
        or portal.installed_at is None
    if fresh:  # first install, or reinstall after an uninstall: start afresh
        portal.installed_at = now
        portal.install_finished_at = None
        portal.uninstalled_at = None
        portal.registered = {}
        portal.webhook_url = None
    portal.connection_kind = ConnectionKind.oauth_app
    portal.domain = info.domain
    portal.client_endpoint = info.client_endpoint
    portal.server_endpoint = _server_endpoint()
    portal.scopes = list(info.scopes) or portal.scopes or []
    portal.needs_reinstall = False
    portal.needs_reinstall_reason = None
    if application_token:
        portal.application_token = application_token
    if status == PortalStatus.active:
        portal.status = PortalStatus.active
        portal.install_finished_at = portal.install_finished_at or now
    elif fresh or portal.status == PortalStatus.needs_reinstall:
        portal.status = status
    if portal.token is not None and not fresh and status == PortalStatus.installing \
            and portal.status == PortalStatus.active:
        # The install page re-posted for a finished install: keep the installing administrator's tokens
        # rather than adopting whichever user opened it.
        session.flush()
        return portal
    if portal.token is None:
        portal.token = PortalToken()
    portal.token.access_token = access_token
    if refresh_token:
        portal.token.refresh_token = refresh_token
    portal.token.expires_at = expires_at
    portal.token.user_id = info.user_id
    session.flush()
    return portal


def install_from_frame(frame: FrameRequest) -> Portal:
    """Store the portal from an install page POST; it stays `installing` until `finish_install`.

    Raises VerificationFailed (401) when `AUTH_ID` is not Hub24's token for that portal and domain,
    VerifierUnavailable (503) when the OAuth server cannot be asked, BadPayload (400) for missing fields.
    """
    if not frame.auth_id:
        raise BadPayload("AUTH_ID is required on the install page")
    info = verify_access_token(frame.auth_id, frame.member_id, frame.domain)
    portal = _store(frame.member_id, info, access_token=frame.auth_id, refresh_token=frame.refresh_id,
                    expires_at=_now() + timedelta(seconds=min(frame.auth_expires, 86400)),
                    application_token=frame.application_token, status=PortalStatus.installing)
    db_session().commit()
    log.info("portal installed (install page)", extra={"member_id": portal.member_id, "portal_id": portal.id})
    return portal


def _auth(payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    auth = group(payload, "auth")
    member_id = text(auth, "member_id", max_len=64, required=True)
    if not valid_member_id(member_id):
        raise BadPayload("auth.member_id is malformed")
    return auth, member_id


def _expires_at(auth: dict[str, Any]) -> datetime:
    expires = text(auth, "expires", max_len=12)
    if expires.isdigit():
        return datetime.fromtimestamp(int(expires), timezone.utc)
    expires_in = text(auth, "expires_in", max_len=10)
    return _now() + timedelta(seconds=int(expires_in) if expires_in.isdigit() else 3600)


def install_from_event(payload: dict[str, Any]) -> Portal:
    """Store the portal from `ONAPPINSTALL` (app without UI): installed and finished at once.

    Raises BadPayload (400), VerificationFailed (401) or VerifierUnavailable (503); changes nothing then.
    """
    auth, member_id = _auth(payload)
    access = text(auth, "access_token", max_len=256, required=True)
    info = verify_access_token(access, member_id, text(auth, "domain", max_len=255) or None)
    portal = _store(member_id, info, access_token=access, refresh_token=text(auth, "refresh_token", max_len=256),
                    expires_at=_expires_at(auth), application_token=text(auth, "application_token", max_len=256),
                    status=PortalStatus.active)
    db_session().commit()
    log.info("portal installed (ONAPPINSTALL)", extra={"member_id": member_id, "portal_id": portal.id})
    _start_mirror(portal)
    return portal


def finish_install(portal_id: int) -> Portal:
    """Record that the install page called `installFinish`: the portal becomes active."""
    portal = db_session().get(Portal, portal_id)
    if portal is None or not portal.is_installed:
        raise LookupError(f"portal {portal_id} is not installed")
    first = portal.install_finished_at is None
    if first:
        portal.install_finished_at = _now()
    if portal.status == PortalStatus.installing:
        portal.status = PortalStatus.active
    db_session().commit()
    if first:
        _start_mirror(portal)
    return portal


def _start_mirror(portal: Portal) -> None:
    """A freshly installed portal starts its CRM mirror at once (a full sync of every entity, in jobs)."""
    from ..sync.service import enqueue_portal_sync

    enqueue_portal_sync(portal.id, "full")


def update_from_event(payload: dict[str, Any]) -> Portal:
    """`ONAPPUPDATE`: prove the sender with its access token, then replace the stored application token.

    Raises BadPayload (400), VerificationFailed (401) or VerifierUnavailable (503).
    """
    auth, member_id = _auth(payload)
    new_token = text(auth, "application_token", max_len=256, required=True)
    access = text(auth, "access_token", max_len=256)
    portal = find_portal(member_id)
    if portal is None or not portal.is_installed or portal.connection_kind != ConnectionKind.oauth_app:
        raise VerificationFailed("Hub24 is not installed on this portal.", reason="not_installed", member_id=member_id)
    if access:
        info = verify_access_token(access, member_id, text(auth, "domain", max_len=255) or None)
        portal.token = portal.token or PortalToken()
        portal.token.access_token = access
        refresh = text(auth, "refresh_token", max_len=256)
        if refresh:
            portal.token.refresh_token = refresh
        portal.token.expires_at = _expires_at(auth)
        portal.scopes = list(info.scopes) or portal.scopes
    else:  # no token to prove it with: only an unchanged application token is acceptable
        portal_for_application_token(member_id, new_token)
    portal.application_token = new_token
    db_session().commit()
    log.info("application updated", extra={"member_id": member_id, "portal_id": portal.id,
                                           "version": text(payload, "data", "VERSION", max_len=32)})
    return portal


def uninstall_from_event(payload: dict[str, Any]) -> tuple[Portal, bool]:
    """`ONAPPUNINSTALL`: verify the application token, mark uninstalled, forget tokens; drop data on CLEAN=1.

    Returns (portal, cleaned). Raises BadPayload (400) or VerificationFailed (401); changes nothing then.
    """
    auth, member_id = _auth(payload)
    portal = portal_for_application_token(member_id, text(auth, "application_token", max_len=256))
    clean = text(payload, "data", "CLEAN", max_len=8) in ("1", "Y", "true")
    portal.status = PortalStatus.uninstalled
    portal.uninstalled_at = _now()
    portal.install_finished_at = None
    portal.application_token = None  # dead once uninstalled; a reinstall brings a new one
    portal.registered = {}
    if portal.token is not None:
        db_session().delete(portal.token)
        portal.token = None
    if clean:
        drop_portal_data(portal)
    db_session().commit()
    log.info("portal uninstalled", extra={"member_id": member_id, "portal_id": portal.id, "clean": clean})
    return portal, clean


def drop_portal_data(portal: Portal) -> None:
    """Drop everything Hub24 holds for `portal` besides the portal row itself (not committed).

    The mirrored CRM schema (`app.sync.schema.schema_name`, with its read-only role), recorded events and
    robot invocations, then whatever later subsystems registered with `on_drop_portal_data`.
    """
    from ..sync.schema import drop_portal_schema

    session = db_session()
    drop_portal_schema(session.connection(), portal.id)
    session.execute(delete(PortalEvent).where(PortalEvent.portal_id == portal.id))
    session.execute(delete(RobotInvocation).where(RobotInvocation.portal_id == portal.id))
    for fn in list(_DROPPERS):
        fn(portal)
