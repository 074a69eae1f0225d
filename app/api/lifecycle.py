"""Portal callbacks: POST /install, /install/finish, /events, /robots/<code> (thin views).

Each view parses, verifies, calls one service (or enqueues), renders. Bad or forged input gets a 4xx with a
message and changes nothing; refusals are logged without secrets (`verify.refuse`).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request

from ..bitrix import events as event_intake
from ..bitrix import install as lifecycle
from ..bitrix.errors import BitrixError
from ..bitrix.payload import BadPayload, read_body, read_query
from ..bitrix.robots import accept_robot_call
from ..bitrix.verify import (VerificationFailed, allow_framing, frame_auth_required, issue_frame_token, parse_frame,
                             refuse)
from ..jobs import MAINTENANCE, RETRY_SYNC, enqueue, job_key

bp = Blueprint("lifecycle", __name__)
log = logging.getLogger("hub24.callbacks")


def _bad(kind: str, exc: BadPayload) -> tuple[Response, int]:
    log.info("bad %s: %s", kind, exc)
    return jsonify(error="bad_request", message=str(exc)), 400


def _refused(kind: str, exc: VerificationFailed) -> tuple[Response, int]:
    refuse(kind, exc)
    return jsonify(status="error", error="invalid_application_token" if exc.status == 401 else "refused",
                   message=exc.message), exc.status


def queue_reconcile(portal_id: int) -> None:
    """Queue a reconcile of the portal on `maintenance` (one at a time per portal)."""
    from ..bitrix.reconcile import reconcile_portal

    enqueue(MAINTENANCE, reconcile_portal, portal_id, job_id=job_key("reconcile", portal_id), retry=RETRY_SYNC)


def lifecycle_event(name: str, body: dict[str, Any]) -> tuple[Response, int]:
    """ONAPPINSTALL / ONAPPUPDATE / ONAPPUNINSTALL, wherever the portal sent them."""
    if name == "ONAPPINSTALL":
        portal = lifecycle.install_from_event(body)
        queue_reconcile(portal.id)
        return jsonify(status="ok", message="installed"), 200
    if name == "ONAPPUPDATE":
        portal = lifecycle.update_from_event(body)
        queue_reconcile(portal.id)
        return jsonify(status="ok", message="updated"), 200
    portal, cleaned = lifecycle.uninstall_from_event(body)
    return jsonify(status="ok", message="uninstalled" + (" and data removed" if cleaned else "")), 200


def _callback(kind: str, fn, *args) -> tuple[Response, int]:
    try:
        return fn(*args)
    except BadPayload as exc:
        return _bad(kind, exc)
    except VerificationFailed as exc:
        return _refused(kind, exc)


@bp.post("/install")
def install():
    """Install page frame POST (app with UI) or ONAPPINSTALL (app without UI)."""
    return _callback("install", _install)


def _install():
    body, query = read_body(request), read_query(request)
    if "event" in body:
        name = event_intake.event_name(body)
        if name not in event_intake.LIFECYCLE_EVENTS:
            raise BadPayload(f"{name} is not an install callback")
        return lifecycle_event(name, body)
    frame = parse_frame(body, query)
    portal = lifecycle.install_from_frame(frame)
    return install_page(portal, frame.protocol, frame.lang)


def install_page(portal, protocol: str, lang: str) -> tuple[Response, int]:
    """Reconcile now (the page finishes installation next) and render the page that calls installFinish."""
    from ..bitrix.reconcile import reconcile

    problem = None
    try:
        report = reconcile(portal.id).as_dict()
    except BitrixError as exc:
        report = None
        problem = "Hub24 could not register its handlers yet; it will retry in the background."
        log.warning("reconcile during install failed: %s", exc.code or type(exc).__name__,
                    extra={"portal_id": portal.id})
        queue_reconcile(portal.id)
    token = issue_frame_token(portal, "INSTALL")
    resp = Response(render_template("install.html", portal=portal, report=report, problem=problem,
                                    frame_token=token, lang=lang))
    return allow_framing(resp, portal.domain, protocol), 200


@bp.post("/install/finish")
@frame_auth_required
def finish_install():
    """Called by the install page right before `installFinish`: records that installation finished."""
    portal = lifecycle.finish_install(g.portal.id)
    return jsonify(status="ok", installed=True, finished_at=portal.install_finished_at.isoformat())


@bp.post("/events")
def events():
    """Every portal event: verify, enqueue, answer at once (lifecycle events are applied here)."""
    return _callback("event", _event)


def _event():
    body = read_body(request)
    name = event_intake.event_name(body)
    if name in event_intake.LIFECYCLE_EVENTS:
        return lifecycle_event(name, body)
    accepted = event_intake.accept_event(body)
    return jsonify(status="ok", message="event accepted", job_id=accepted.job_id), 200


@bp.post("/robots/<code>")
def robots(code: str):
    """A robot invocation: verify, record, enqueue on `integrations`, answer at once."""
    def run():
        if len(code) > 64:
            return jsonify(error="not_found", message="No such robot."), 404
        try:
            inv = accept_robot_call(code, read_body(request))
        except LookupError as exc:
            return jsonify(error="not_found", message=str(exc)), 404
        return jsonify(status="ok", message="robot call accepted", invocation_id=inv.id), 200
    return _callback("robot call", run)


def init_app(app) -> None:
    app.register_blueprint(bp)
