"""The `auth[...]` blocks and frame fields the portal sends to an app (PROTOCOL.md §1.3, §1.4, §5.2)."""
from __future__ import annotations

import secrets
import time
from typing import Any

from .. import oauth
from .model import Installation


def user_tokens(inst: Installation, user_id: int) -> tuple[Any, Any]:
    """The user's current token pair for this installation, minted again once expired or refreshed away.

    Bitrix24 hands the same pair to every callback for a user until it expires; minting per callback
    would flood the token store during mass changes.
    """
    sandbox = inst.portal.sandbox
    with sandbox.lock:
        pair = inst.user_tokens.get(user_id)
        if pair is not None:
            access, refresh = pair
            alive = (sandbox.access_tokens.get(access.token) is access and not access.expired
                     and sandbox.refresh_tokens.get(refresh.token) is refresh and not refresh.used)
            if alive:
                return pair
        pair = sandbox.issue_tokens(inst.portal, inst.client_id, user_id, list(inst.scopes))
        inst.user_tokens[user_id] = pair
        return pair


def status_of(inst: Installation) -> str:
    return inst.status or ("L" if inst.client_id.startswith("local.") else "F")


def auth_block(inst: Installation, user_id: int | None, *, refresh: bool = True, tokens: bool = True) -> dict[str, Any]:
    """`auth[...]` of an event, install callback or robot call.

    `user_id=None` means the change had no user (automation, agent): the block then carries no tokens.
    `tokens=False` gives the uninstall shape (domain, endpoints, member_id, application_token only).
    """
    portal = inst.portal
    sandbox = portal.sandbox
    if not tokens:
        return {"domain": portal.domain, "server_endpoint": oauth.server_endpoint(sandbox),
                "client_endpoint": portal.client_endpoint, "member_id": portal.member_id,
                "application_token": inst.application_token}
    out: dict[str, Any] = {}
    if user_id is not None:
        access, refresh_tok = user_tokens(inst, user_id)
        out["access_token"] = access.token
        out["expires"] = str(int(access.expires_at))
        out["expires_in"] = str(sandbox.config.access_token_lifetime)
    out.update({
        "scope": ",".join(inst.scopes),
        "domain": portal.domain,
        "server_endpoint": oauth.server_endpoint(sandbox),
        "status": status_of(inst),
        "client_endpoint": portal.client_endpoint,
        "member_id": portal.member_id,
    })
    if user_id is not None:
        out["user_id"] = str(user_id)
        if refresh:
            out["refresh_token"] = refresh_tok.token
    out["application_token"] = inst.application_token
    return out


def frame_fields(inst: Installation, user_id: int, placement: str, options: Any = None,
                 lang: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Query string and form body of an app-page or placement frame POST (fixture install_post.json)."""
    import json

    access, refresh = user_tokens(inst, user_id)
    portal = inst.portal
    query = {"DOMAIN": portal.domain, "PROTOCOL": "0", "LANG": lang or inst.language_id,
             "APP_SID": secrets.token_hex(16)}
    body = {
        "AUTH_ID": access.token,
        "AUTH_EXPIRES": str(max(0, int(access.expires_at - time.time()))),
        "REFRESH_ID": refresh.token,
        "SERVER_ENDPOINT": oauth.server_endpoint(portal.sandbox),
        "APPLICATION_TOKEN": inst.application_token,
        "APPLICATION_SCOPE": ",".join(inst.scopes),
        "member_id": portal.member_id,
        "status": status_of(inst),
        "PLACEMENT": placement,
    }
    if options is not None:
        body["PLACEMENT_OPTIONS"] = options if isinstance(options, str) else json.dumps(options, separators=(",", ":"))
    return query, body
