"""Event intake: verify, enqueue, answer at once (DESIGN.md "No lost events"; PROTOCOL.md §5).

`accept_event` checks the shape and the application token, then enqueues `process_event` on the `events`
queue under a deterministic job id (a repeated delivery of the same event is one job). Bitrix24 never
retries, so the view answers 200 as soon as the job is queued.

`process_event` (the job) records the event in `portal_events` — the hand-over to the sync issue, which
reads pending rows with `pending_events` (coalescing them by entity type into batch reads) and stamps them
with `mark_consumed`. A repeated run of the same job inserts nothing new.

Lifecycle events (`ONAPPINSTALL`, `ONAPPUPDATE`, `ONAPPUNINSTALL`) arrive at the same URL and are routed to
`app.bitrix.install` by the view, not queued: they change how later events are verified.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from ..db import db_session
from ..jobs import EVENTS, RETRY_EVENT, RETRY_SYNC, SYNC, enqueue, job_key
from ..manifest import load_manifest
from ..models import Portal, PortalEvent
from .payload import BadPayload, group, text
from .verify import portal_for_application_token

log = logging.getLogger("hub24.events")

LIFECYCLE_EVENTS = frozenset({"ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL"})
_NAME = re.compile(r"^ON[A-Z0-9_]{1,60}$")
_ENTITY = {"DEAL": "deal", "LEAD": "lead", "CONTACT": "contact", "COMPANY": "company"}


@dataclass(frozen=True)
class Accepted:
    """An event that passed verification and is queued as `job_id`."""

    portal_id: int
    event: str
    job_id: str


def event_name(payload: dict[str, Any]) -> str:
    """The upper-case event name of a callback; raises BadPayload when missing or malformed."""
    name = text(payload, "event", max_len=64, required=True).upper()
    if not _NAME.match(name):
        raise BadPayload("event is not a Bitrix24 event name")
    return name


@functools.lru_cache(maxsize=1)
def subscribed_events() -> frozenset[str]:
    """Event names the manifest binds (the only ones Hub24 accepts)."""
    return frozenset(e["event"] for e in load_manifest()["events"])


def entity_of(event: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """(entity type, entity id) an event is about: ("deal", "42"), ("dynamic:128", "7"), ("user", "15")."""
    fields = data.get("FIELDS") if isinstance(data.get("FIELDS"), dict) else {}
    if event.startswith("ONCRMDYNAMICITEM"):
        type_id = fields.get("ENTITY_TYPE_ID") or event.rpartition("_")[2]
        return (f"dynamic:{type_id}" if str(type_id).isdigit() else "dynamic"), _id(fields.get("ID"))
    if event == "ONCRMDEALMOVETOCATEGORY":
        return "deal", _id(fields.get("ID"))
    for word, entity in _ENTITY.items():
        if event.startswith(f"ONCRM{word}"):
            return entity, _id(fields.get("ID"))
    if event == "ONUSERADD":
        return "user", _id(data.get("ID") or fields.get("ID"))
    return "other", _id(fields.get("ID"))


def _id(value: Any) -> str | None:
    return str(value)[:64] if isinstance(value, str) and value else None


def accept_event(payload: dict[str, Any]) -> Accepted:
    """Verify one CRM/user event and queue `process_event` for it.

    Raises BadPayload (400) for a malformed or unsubscribed event, VerificationFailed (401/403) when the
    application token does not match the portal. Nothing is queued then.
    """
    name = event_name(payload)
    auth = group(payload, "auth")
    member_id = text(auth, "member_id", max_len=64, required=True)
    token = text(auth, "application_token", max_len=256)
    data = group(payload, "data")
    ts = text(payload, "ts", max_len=20)
    if ts and not ts.isdigit():
        raise BadPayload("ts must be a unix time")
    portal = portal_for_application_token(member_id, token)
    if name not in subscribed_events() or name in LIFECYCLE_EVENTS:
        raise BadPayload(f"Hub24 does not handle {name} here")
    entity, entity_id = entity_of(name, data)
    digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    jid = job_key("event", portal.id, name, entity_id or digest, ts or "0")
    enqueue(EVENTS, process_event, portal.id, name, data, job_id=jid, retry=RETRY_EVENT)
    return Accepted(portal.id, name, jid)


def process_event(portal_id: int, event_name: str, data: dict[str, Any]) -> int | None:
    """Job: record one event in `portal_events` for the sync to apply; returns the new row id.

    A repeat of the same job (same RQ job id) records nothing new; an event for a portal that has since
    been uninstalled is dropped (logged). Database errors raise, so RQ retries.
    """
    from rq import get_current_job

    session = db_session()
    portal = session.get(Portal, portal_id)
    if portal is None or not portal.is_installed:
        log.info("event for a portal no longer installed dropped", extra={"portal_id": portal_id, "event": event_name})
        return None
    entity, entity_id = entity_of(event_name, data)
    job = get_current_job()
    dedupe = job.id if job is not None else hashlib.sha1(
        json.dumps([event_name, data], sort_keys=True).encode()).hexdigest()
    stmt = insert(PortalEvent).values(portal_id=portal_id, event_name=event_name, entity_type=entity,
                                      entity_id=entity_id, data=data, dedupe_key=dedupe[:160],
                                      received_at=datetime.now(timezone.utc))
    row_id = session.execute(stmt.on_conflict_do_nothing(constraint="uq_portal_events_portal_id_dedupe_key")
                             .returning(PortalEvent.id)).scalar()
    session.commit()
    if row_id is not None:
        _queue_apply(portal_id)
        if entity == "user" and entity_id and entity_id.isdigit():  # ONUSERADD: Hub24's directory takes the new user
            from ..users.service import enqueue_user_sync

            enqueue_user_sync(portal_id, entity_id)
    return row_id


def _queue_apply(portal_id: int) -> None:
    """Hand the portal's pending events to sync: one coalescing job per portal at a time.

    While that job is queued, further events only add rows; it reads them all when it runs (and loops until
    none are left), so a burst of 10,000 changes becomes a handful of batch reads.
    """
    from ..sync.service import apply_pending_events

    enqueue(SYNC, apply_pending_events, portal_id, job_id=job_key("events-apply", portal_id), retry=RETRY_SYNC,
            follow_up=True)


def pending_events(portal_id: int, entity_type: str | None = None, limit: int = 2500) -> list[PortalEvent]:
    """Recorded events not yet applied by sync, oldest first (for coalescing into batch reads)."""
    q = select(PortalEvent).where(PortalEvent.portal_id == portal_id, PortalEvent.consumed_at.is_(None))
    if entity_type:
        q = q.where(PortalEvent.entity_type == entity_type)
    return list(db_session().scalars(q.order_by(PortalEvent.id).limit(limit)))


def mark_consumed(event_ids: list[int]) -> int:
    """Stamp events as applied by sync (not committed); returns how many were pending."""
    if not event_ids:
        return 0
    res = db_session().execute(update(PortalEvent).where(PortalEvent.id.in_(event_ids),
                                                         PortalEvent.consumed_at.is_(None))
                               .values(consumed_at=datetime.now(timezone.utc)))
    return res.rowcount or 0
