"""Real-time delivery on or off: the CRM event handlers Hub24 binds in a portal (/api/v1/webhooks/...).

`register` binds what manifest.json lists (through the install reconcile) and turns real-time application
on for every entity; `unregister` unbinds the CRM change events (the lifecycle events — install, update,
uninstall — stay bound, or Hub24 would not hear its own removal) and turns it off, leaving incremental sync
and reconciliation to keep the mirror current. Both raise NotAvailableForWebhook for webhook portals.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import update

from ..bitrix.errors import NotAvailableForWebhook
from ..bitrix.reconcile import handler_url, reconcile
from ..db import db_session
from ..models import ConnectionKind, Portal, SyncState


def _app_portal(portal_id: int) -> tuple[Portal, Any]:
    from ..bitrix.client import client_for

    portal = db_session().get(Portal, portal_id)
    if portal.connection_kind == ConnectionKind.webhook:
        raise NotAvailableForWebhook("", "real-time events need Hub24 installed as an application; this portal is "
                                         "connected by an incoming webhook, so it is kept current by incremental sync")
    return portal, client_for(portal_id)


def _is_crm_change(event: str) -> bool:
    return event.upper().startswith("ONCRM")


def registered(portal_id: int) -> dict:
    """The event handlers bound for Hub24 in the portal, as the portal reports them."""
    _, client = _app_portal(portal_id)
    events = _rows(client.call("event.get", {}))
    return {"events": [{"event": str(e.get("event", "")).upper(), "handler": e.get("handler") or None,
                        "offline": str(e.get("offline", "0")) in ("1", "true", "True")} for e in events]}


def register(portal_id: int) -> dict:
    """Bind every manifest event (online, and offline where allowed) and switch real-time application on."""
    _app_portal(portal_id)
    report = reconcile(portal_id)
    db_session().execute(update(SyncState).where(SyncState.portal_id == portal_id).values(realtime=True))
    db_session().commit()
    return {"bound": report.bound, "skipped": report.skipped, **registered(portal_id)}


def unregister(portal_id: int) -> dict:
    """Unbind the CRM change handlers and switch real-time application off."""
    _, client = _app_portal(portal_id)
    ours = handler_url("/events")
    removed = []
    for e in _rows(client.call("event.get", {})):
        name = str(e.get("event", "")).upper()
        if not _is_crm_change(name):
            continue
        if str(e.get("offline", "0")) in ("1", "true", "True"):
            client.call("event.unbind", {"event": name, "event_type": "offline"})
            removed.append(f"offline event {name}")
        elif e.get("handler") == ours:
            client.call("event.unbind", {"event": name, "handler": ours})
            removed.append(f"event {name}")
    db_session().execute(update(SyncState).where(SyncState.portal_id == portal_id).values(realtime=False))
    db_session().commit()
    return {"removed": removed, **registered(portal_id)}


def _rows(result: Any) -> list[dict]:
    return list(result or []) if not isinstance(result, dict) else list(result.get("result") or [])
