"""Who opened a frame, as the portal says: `profile` called with the frame's own AUTH_ID.

`AUTH_ID` is issued for the user who opened the page and is limited by that user's rights
(PROTOCOL.md §1.3), so `profile` answers that user's id and whether Bitrix24 counts them as a portal
administrator (§8.5). The call goes to the stored portal domain, never to a host taken from the request,
so a forged DOMAIN cannot make Hub24 send a token elsewhere. Any failure means "unknown user, not an
administrator": pages still open, admin-only pages refuse.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

log = logging.getLogger("hub24.placements")

PROFILE_TIMEOUT = 10  # seconds


@dataclass(frozen=True)
class FrameUser:
    """The Bitrix24 user behind a frame; `user_id` None when the portal could not tell."""

    user_id: int | None = None
    admin: bool = False
    name: str = ""


def frame_user(auth_id: str, domain: str) -> FrameUser:
    """Ask portal `domain` who `auth_id` belongs to (`profile`). Never raises: unknown on any error."""
    if not auth_id or not domain:
        return FrameUser()
    from b24pysdk import BitrixApp, BitrixToken
    from b24pysdk.errors import BitrixSDKException

    cfg = current_app.config
    app = BitrixApp(client_id=cfg.get("B24_CLIENT_ID") or "unset", client_secret=cfg.get("B24_CLIENT_SECRET") or "unset")
    token = BitrixToken(domain=domain, auth_token=auth_id, bitrix_app=app)
    token._AUTO_REFRESH_EXPIRED_TOKEN = False  # a user's frame token is never refreshed by Hub24
    try:
        result = token.call_method("profile", {}, timeout=PROFILE_TIMEOUT).get("result") or {}
    except (BitrixSDKException, OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("profile lookup for a frame failed: %s", type(exc).__name__, extra={"domain": domain})
        return FrameUser()
    raw_id = str(result.get("ID", "")) if isinstance(result, dict) else ""
    if not raw_id.isdigit() or len(raw_id) > 12:
        return FrameUser()
    admin = result.get("ADMIN") in (True, "Y", "true", 1, "1")
    name = " ".join(str(result.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()[:200]
    return FrameUser(user_id=int(raw_id), admin=admin, name=name)
