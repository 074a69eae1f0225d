"""Robot intake: verify a robot call, record it, queue its work on `integrations`, answer at once (PROTOCOL.md §7).

The robots themselves are declared in manifest.json (code, names, properties, document types). A call is
recorded as a `RobotInvocation` (the event token encrypted) and `run_robot(invocation_id)` is queued; the
work is done by the handler registered for the robot's code with `robot_handler(code)` — the integrations
(partner bridge, Alma PMS) register theirs. Until one is registered, `run_robot` marks the invocation
`no_handler` so it is visible, and does not fail the job.
"""
from __future__ import annotations

import functools
import logging
import re
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from ..db import db_session
from ..jobs import INTEGRATIONS, RETRY_OUTBOUND, enqueue, job_key
from ..manifest import load_manifest
from ..models import Portal, RobotInvocation
from .payload import BadPayload, group, text
from .verify import portal_for_application_token

log = logging.getLogger("hub24.robots")

_HANDLERS: dict[str, Callable[[int], Any]] = {}
_DOC_PART = re.compile(r"^[A-Za-z0-9_\\]{1,100}$")


@functools.lru_cache(maxsize=1)
def robot_specs() -> dict[str, dict[str, Any]]:
    """Robots declared in manifest.json, by code."""
    return {r["code"]: r for r in load_manifest()["robots"]}


def robot_handler(code: str) -> Callable[[Callable[[int], Any]], Callable[[int], Any]]:
    """Register `fn(invocation_id)` as the worker-side handler of robot `code`."""
    def register(fn: Callable[[int], Any]) -> Callable[[int], Any]:
        _HANDLERS[code] = fn
        return fn
    return register


def _list3(payload: dict[str, Any], name: str) -> list[str]:
    raw = group(payload, name)
    values = [raw[k] for k in sorted(raw, key=lambda k: int(k) if k.isdigit() else 99)] if raw else []
    if len(values) != 3 or not all(isinstance(v, str) and _DOC_PART.match(v) for v in values):
        raise BadPayload(f"{name} must be a list of three names (module, class, id)")
    return values


def _properties(payload: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The declared input properties (undeclared ones are ignored; values stay as sent)."""
    raw = group(payload, "properties")
    out: dict[str, Any] = {}
    for key in spec.get("properties", {}):
        value = raw.get(key)
        if isinstance(value, str):
            if len(value) > 8192:
                raise BadPayload(f"properties.{key} is too large")
            out[key] = value
        elif isinstance(value, dict):
            out[key] = [v for v in value.values() if isinstance(v, str)][:100]
    return out


def accept_robot_call(code: str, payload: dict[str, Any]) -> RobotInvocation:
    """Verify a robot call for `code`, record it and queue `run_robot`; returns the invocation.

    Raises LookupError (404) for a code Hub24 does not declare, BadPayload (400) for a malformed call,
    VerificationFailed (401/403) for a wrong application token. Nothing is recorded or queued then.
    A repeated delivery of the same workflow's call returns the existing invocation and queues nothing new.
    """
    spec = robot_specs().get(code)
    if spec is None:
        raise LookupError(f"Hub24 has no robot {code!r}")
    auth = group(payload, "auth")
    member_id = text(auth, "member_id", max_len=64, required=True)
    token = text(auth, "application_token", max_len=256)
    workflow_id = text(payload, "workflow_id", max_len=128, required=True)
    sent_code = text(payload, "code", max_len=64)
    if sent_code and sent_code != code:
        raise BadPayload("code does not match the robot's URL")
    document_id = _list3(payload, "document_id")
    document_type = _list3(payload, "document_type") if group(payload, "document_type") else list(spec["document_type"])
    use_subscription = text(payload, "use_subscription", max_len=1) != "N"
    event_token = text(payload, "event_token", max_len=1024)
    if use_subscription and not event_token:
        raise BadPayload("event_token is required when the workflow waits for an answer")
    properties = _properties(payload, spec)
    portal = portal_for_application_token(member_id, token)
    session = db_session()
    stmt = insert(RobotInvocation).values(
        portal_id=portal.id, code=code, workflow_id=workflow_id, document_id=document_id,
        document_type=document_type, properties=properties,
        event_token=event_token or None,  # EncryptedText encrypts on bind
        use_subscription=use_subscription, status="received", received_at=datetime.now(timezone.utc))
    new_id = session.execute(stmt.on_conflict_do_nothing(
        constraint="uq_robot_invocations_portal_id_workflow_id_code").returning(RobotInvocation.id)).scalar()
    session.commit()
    if new_id is None:  # the same call delivered twice
        return session.scalar(select(RobotInvocation).where(RobotInvocation.portal_id == portal.id,
                                                            RobotInvocation.workflow_id == workflow_id,
                                                            RobotInvocation.code == code))
    enqueue(INTEGRATIONS, run_robot, new_id, job_id=job_key("robot", new_id), retry=RETRY_OUTBOUND)
    invocation = session.get(RobotInvocation, new_id)
    invocation.status = "queued"
    session.commit()
    return invocation


def run_robot(invocation_id: int) -> str:
    """Job: hand a recorded robot call to its registered handler; returns the invocation's status.

    Handlers raise on failure so RQ retries. With no handler registered the invocation is marked
    `no_handler` (visible in the database and logs) instead of failing the job.
    """
    session = db_session()
    inv = session.get(RobotInvocation, invocation_id)
    if inv is None:
        return "missing"
    portal = session.get(Portal, inv.portal_id)
    if portal is None or not portal.is_installed:
        inv.status, inv.detail = "failed", "the portal is no longer installed"
        session.commit()
        return inv.status
    handler = _HANDLERS.get(inv.code)
    if handler is None:
        inv.status, inv.detail = "no_handler", f"no handler is registered for robot {inv.code} yet"
        inv.finished_at = datetime.now(timezone.utc)
        session.commit()
        log.warning("robot call without a handler", extra={"portal_id": inv.portal_id, "robot": inv.code})
        return inv.status
    handler(invocation_id)
    session.refresh(inv)
    return inv.status
