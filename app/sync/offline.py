"""Offline events: the portal's own queue of changes, drained with reserve-then-clear (PROTOCOL.md §5.5).

Online events are never retried by Bitrix24, so a delivery lost on the way is gone. Bound as offline
events too, the same changes wait in the portal's queue until Hub24 takes them: `event.offline.get` with
`clear=0` reserves a batch under a `process_id`, the batch is recorded as pending events, and only then is
it cleared. A crash between the two leaves the batch reserved, and the next drain reads it again
(recording is idempotent by message id). Where the plan does not offer the queue, the reconciliation
still finds every difference.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy.dialects.postgresql import insert

from ..bitrix.errors import AuthLost, BitrixError, RateLimited
from ..db import db_session
from ..jobs import SYNC, RETRY_SYNC, enqueue, job_key
from ..models import ConnectionKind, PortalEvent
from .entities import entity_for_event
from .service import _portal, apply_pending_events, enqueue_sync, open_sync, pause_reason

log = logging.getLogger("hub24.sync.offline")
BATCH = 1000
MAX_ROUNDS = 50


def drain_offline_events(portal_id: int) -> dict:
    """Job: move the portal's offline queue into pending events, then apply them.

    Returns counts; {"unavailable": reason} when the portal offers no offline queue to this app.
    RateLimited and database errors raise so RQ retries; AuthLost pauses quietly (the portal is flagged).
    """
    from ..bitrix.events import entity_of

    portal = _portal(portal_id)
    reason = pause_reason(portal)
    if reason:
        return {"paused": reason}
    if portal.connection_kind == ConnectionKind.webhook:
        return {"unavailable": "offline events need an installed app, not a webhook"}
    client = open_sync(portal).client
    session = db_session()
    recorded, rounds, no_ids = 0, 0, set()
    try:
        while rounds < MAX_ROUNDS:
            rounds += 1
            res = client.call("event.offline.get", {"clear": 0, "limit": BATCH}) or {}
            events = res.get("events") or []
            process_id = res.get("process_id")
            if not events:
                break
            for ev in events:
                name = str(ev.get("EVENT_NAME") or "").upper()
                data = ev.get("EVENT_DATA") if isinstance(ev.get("EVENT_DATA"), dict) else {}
                entity, entity_id = entity_of(name, data)
                if entity_id is None:
                    no_ids.add(entity)  # the queue told us "something changed" without an id
                message = ev.get("MESSAGE_ID") or ev.get("ID")
                stmt = insert(PortalEvent).values(
                    portal_id=portal.id, event_name=name, entity_type=entity, entity_id=entity_id, data=data,
                    dedupe_key=f"offline-{message}"[:160], received_at=datetime.now(timezone.utc))
                recorded += session.execute(stmt.on_conflict_do_nothing(
                    constraint="uq_portal_events_portal_id_dedupe_key")).rowcount or 0
            session.commit()  # recorded first, cleared second: a crash in between only re-reads
            if process_id:
                client.call("event.offline.clear", {"process_id": process_id})
            if len(events) < BATCH:
                break
    except (AuthLost, RateLimited):
        raise
    except BitrixError as exc:
        log.info("offline event queue unavailable", extra={"portal_id": portal_id, "code": exc.code})
        return {"unavailable": f"{exc.code or 'error'}: {exc.description}"}
    for entity in no_ids:
        name = entity_for_event(entity)
        if name:
            enqueue_sync(portal.id, name, "incremental")
    applied = apply_pending_events(portal.id) if recorded else {"events": 0}
    return {"recorded": recorded, "rounds": rounds, "applied": applied.get("events", 0)}


def enqueue_drain(portal_id: int):
    """Queue a drain of the portal's offline queue (one at a time per portal)."""
    return enqueue(SYNC, drain_offline_events, portal_id, job_id=job_key("offline", portal_id), retry=RETRY_SYNC)


def drain_all() -> int:
    """Periodic job: queue a drain for every active app-installed portal."""
    from sqlalchemy import select

    from ..models import Portal, PortalStatus

    ids = db_session().scalars(select(Portal.id).where(Portal.status == PortalStatus.active,
                                                       Portal.connection_kind == ConnectionKind.oauth_app)).all()
    for pid in ids:
        enqueue_drain(pid)
    return len(ids)
