"""What every read-API view shares: authentication scoped to one portal, and errors operators understand.

The portal is implied by the token (an API key names one portal; a frame token was signed for one). A
request that names a portal anyway (``?portal=``, ``?portal_id=``, ``?member_id=`` or the ``X-Hub24-Portal``
header) must name the token's own portal, or it is refused with 403 `wrong_portal`: one portal's key never
reads another's rows, and the refusal is explicit rather than a silent answer about the wrong portal.

Errors (JSON ``{"error", "message", "what_to_do"}``):

| status | error | when |
| --- | --- | --- |
| 400 | bad_request | a malformed parameter (the message names it) |
| 401 | unauthorized | no token, an unknown or revoked API key, an expired frame token, Hub24 uninstalled |
| 403 | wrong_portal | the request names another portal than the token's |
| 403 | missing_scope | Hub24 was installed without a scope this data needs |
| 409 | authorization_lost | the portal's authorisation expired or was revoked (calls to the portal only) |
| 409 | mirror_empty | no sync has filled this data yet |
| 404 | not_found | unknown entity or record |
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from flask import g, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import DataError

from ..db import db_session
from ..models import Portal
from ..sync.schema import schema_name
from ..sync.service import pause_reason
from .auth import api_auth_required
from .readapi_query import BadQuery

log = logging.getLogger("hub24.api")

PORTAL_PARAMS = ("portal", "portal_id", "member_id")


class ApiError(Exception):
    """An error answer: status, code, message and what the operator can do about it."""

    def __init__(self, status: int, code: str, message: str, what_to_do: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.what_to_do = status, code, message, what_to_do

    def response(self):
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.what_to_do:
            body["what_to_do"] = self.what_to_do
        return jsonify(body), self.status


def _named_portal() -> str | None:
    for key in PORTAL_PARAMS:
        if key in request.args:
            return request.args.get(key, "")
    return request.headers.get("X-Hub24-Portal")


def check_portal_named(portal: Portal) -> None:
    """Raise 403 wrong_portal when the request names a portal other than the token's."""
    named = _named_portal()
    if named is None:
        return
    if named.strip() not in {str(portal.id), portal.member_id, portal.domain}:
        log.warning("refused api call: names another portal", extra={"member_id": portal.member_id,
                                                                      "refused": "api call", "reason": "wrong_portal"})
        raise ApiError(403, "wrong_portal", "This token belongs to another portal than the one the request names.",
                       "Use the API key or frame token of the portal you want to read; a token only ever reads "
                       "its own portal, so the portal parameter can be left out.")


def require_scope(portal: Portal, scope: str) -> None:
    """Raise 403 missing_scope when the portal's recorded scopes lack `scope` (unknown scopes pass)."""
    scopes = portal.scopes or []
    if scopes and scope not in scopes:
        raise ApiError(403, "missing_scope", f"Hub24 was installed on this portal without the {scope!r} scope.",
                       f"Reinstall Hub24 from the portal's Applications page and grant the {scope!r} permission.")


def require_authorization(portal: Portal) -> None:
    """Raise 409 authorization_lost when calls to the portal cannot be made (needs reinstalling)."""
    reason = pause_reason(portal)
    if reason:
        raise ApiError(409, "authorization_lost", f"Hub24 cannot reach this portal: {reason}.",
                       "Open the portal's Applications page and reinstall (or re-authorise) Hub24; syncs resume "
                       "on their own afterwards.")


def stale_warning(portal: Portal) -> str | None:
    """A note for read answers served from the mirror while the portal's authorisation is gone."""
    reason = pause_reason(portal)
    return f"data may be out of date: {reason}; reinstall Hub24 to resume syncing" if reason else None


def mirror_tables(portal_id: int) -> dict[str, dict[str, Any]]:
    """The mirrored entity tables of a portal: table_name -> {entity, entity_type_id, title}; {} when none."""
    s = schema_name(portal_id)
    session = db_session()
    if session.execute(text("SELECT to_regclass(:t)"), {"t": f"{s}.entities"}).scalar() is None:
        return {}
    rows = session.execute(text(f'SELECT table_name, entity, entity_type_id, title FROM "{s}".entities '
                                "ORDER BY entity_type_id"))
    return {t: {"entity": e, "entity_type_id": et, "title": title} for t, e, et, title in rows}


def mirror_empty(what: str) -> ApiError:
    return ApiError(409, "mirror_empty", f"The CRM mirror has no {what} yet: the first sync has not finished.",
                    "Wait for the initial sync after install, or start one: POST /api/v1/sync/start/all "
                    '{"sync_type": "full"}; GET /api/v1/sync/status shows progress.')


def read_endpoint(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: API authentication, the portal check, and errors mapped to clear 4xx answers."""

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any):
        try:
            check_portal_named(g.portal)
            return view(*args, **kwargs)
        except ApiError as exc:
            return exc.response()
        except BadQuery as exc:
            return ApiError(400, "bad_request", str(exc)).response()
        except DataError as exc:  # a value PostgreSQL could not take (out of range): the caller's input
            db_session().rollback()
            detail = str(getattr(exc.orig, "pgerror", "") or "").strip().splitlines()[:1]
            return ApiError(400, "bad_request", f"A parameter value was not accepted: {''.join(detail)[:200]}").response()

    return api_auth_required(inner)


def page_meta(limit: int, offset: int, total: int, returned: int, **extra: Any) -> dict[str, Any]:
    """Paging metadata shared by list answers."""
    meta = {"limit": limit, "offset": offset, "total": total, "returned": returned,
            "next_offset": offset + returned if offset + returned < total else None}
    meta.update(extra)
    return meta
