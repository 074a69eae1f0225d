"""Who is calling the JSON API: a frame page (signed frame token) or a script (portal API key).

Both arrive as `Authorization: Bearer ...`. `api_auth_required` resolves the caller to one installed
portal and sets `g.portal`, `g.caller` ("frame" or "api_key") and `g.member_id`; anything else is a 401
with a message saying what to send. Views then only ever touch `g.portal`'s data. `admin_required`
guards what changes a portal's setup (sync settings, starting syncs, event handlers).
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timezone
from typing import Any, Callable

from flask import g, jsonify, request
from sqlalchemy import select

from ..bitrix.verify import VerificationFailed, portal_for_frame_token, refuse
from ..db import db_session
from ..models import Portal
from ..models.access import ApiKey

KEY_PREFIX = "hub24_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(portal: Portal, name: str) -> str:
    """Mint a key for `portal`; returns the key (shown once; only its hash is stored). Not committed."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    db_session().add(ApiKey(portal_id=portal.id, name=name[:100], prefix=key[:12], key_hash=_hash(key)))
    return key


def portal_for_api_key(key: str) -> Portal:
    """The portal an API key belongs to; raises VerificationFailed for unknown, revoked or orphaned keys."""
    row = db_session().scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key)))
    if row is None or row.revoked_at is not None:
        raise VerificationFailed("The API key is unknown or revoked.", reason="bad_api_key")
    portal = db_session().get(Portal, row.portal_id)
    if portal is None or not portal.is_installed:
        raise VerificationFailed("Hub24 is not installed on this key's portal.", reason="portal_gone")
    row.last_used_at = datetime.now(timezone.utc)
    return portal


def api_auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: a frame token or an API key, else 401 JSON naming what is expected."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        try:
            if not token:
                raise VerificationFailed("Send Authorization: Bearer <frame token or API key>.", reason="no_token")
            if token.startswith(KEY_PREFIX):
                portal, caller = portal_for_api_key(token), "api_key"
            else:
                claims, portal = portal_for_frame_token(token)
                caller, g.frame = "frame", claims
        except VerificationFailed as exc:
            refuse("api call", exc)
            resp = jsonify(error="unauthorized", message=exc.message)
            resp.headers["WWW-Authenticate"] = 'Bearer realm="hub24"'
            return resp, 401
        g.portal, g.caller, g.member_id = portal, caller, portal.member_id
        return view(*args, **kwargs)

    return wrapper


def caller_is_admin() -> bool:
    """API keys are made by administrators; a frame caller must be one as Bitrix24 said when the page opened."""
    return g.caller == "api_key" or bool(getattr(getattr(g, "frame", None), "admin", False))


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator (inside `api_auth_required`): 403 for a frame user who is not a portal administrator."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if not caller_is_admin():
            return jsonify(error="forbidden", message="Only portal administrators can change this; ask one to do it "
                                                      "from Hub24's settings."), 403
        return view(*args, **kwargs)

    return wrapper
