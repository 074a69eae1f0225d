"""The OAuth server (PROTOCOL.md §2) and the portal's `/oauth/authorize/` page.

Bitrix24 runs the authorization server on its own host (`oauth.bitrix.info`); the sandbox serves it on
the main port under the prefix `/oauth`, so its base URL is ``http://<host>:<port>/oauth``:

* ``<base>/oauth/token/``  token grant and refresh (GET or POST, query or form parameters);
* ``<base>/rest/app.info`` the OAuth server's `app.info` (what b24pysdk calls to check a frame or event);
* ``<base>/rest/``          is what `server_endpoint` / `SERVER_ENDPOINT` carry in every payload.

This is the one "documented switch" an app needs: b24pysdk builds ``{_BASE_OAUTH_URL}/oauth/token/`` and
``{_BASE_OAUTH_URL}/rest/app.info/``. `/oauth/token/` on the bare main port answers too, for apps that
were told the host rather than the base URL. The authorize page belongs to the portal, so it answers on
every portal's port (`http://<portal>/oauth/authorize/`).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, request

from .core import PortalState, Sandbox

bp = Blueprint("oauth", __name__)

PREFIX = "/oauth"
CODE_LIFETIME = 30.0  # seconds (PROTOCOL.md §2.1)


# -- URLs every payload carries ------------------------------------------------------------

def main_url(sandbox: Sandbox) -> str:
    """``http://host:port`` of the sandbox's main server (falls back to the configured address)."""
    return (sandbox.base_url or f"http://{sandbox.config.host}:{sandbox.config.port}").rstrip("/")


def oauth_base_url(sandbox: Sandbox) -> str:
    """Base URL of the OAuth server: what an app sets as its OAuth host (`B24_OAUTH_URL`)."""
    return main_url(sandbox) + PREFIX


def server_endpoint(sandbox: Sandbox) -> str:
    """The OAuth server's REST endpoint (`server_endpoint`, `SERVER_ENDPOINT`)."""
    return oauth_base_url(sandbox) + "/rest/"


def server_domain(sandbox: Sandbox) -> str:
    """The OAuth server "host" (`domain` in token answers, `server_domain` in the redirect)."""
    return oauth_base_url(sandbox).split("://", 1)[1]


def app_status(sandbox: Sandbox, portal: PortalState, client_id: str) -> str:
    """`status` of an installation: ``L`` for local apps, else the installation's status (``F`` by default)."""
    inst = portal.installations.get(client_id)
    if inst is not None and getattr(inst, "status", None):
        return inst.status
    return "L" if client_id.startswith("local.") else "F"


def token_response(sandbox: Sandbox, portal: PortalState, client_id: str, access, refresh) -> dict[str, Any]:
    """The JSON body of a successful token grant (fixtures oauth_*_response.json plus b24pysdk's fields)."""
    inst = portal.installations.get(client_id)
    out = {
        "access_token": access.token,
        "expires": int(access.expires_at),
        "expires_in": sandbox.config.access_token_lifetime,
        "scope": ",".join(access.scopes),
        "domain": server_domain(sandbox),
        "server_endpoint": server_endpoint(sandbox),
        "status": app_status(sandbox, portal, client_id),
        "client_endpoint": portal.client_endpoint,
        "member_id": portal.member_id,
        "user_id": access.user_id,
        "refresh_token": refresh.token,
    }
    if inst is not None:
        out["application_token"] = inst.application_token
    return out


# -- authorization codes -----------------------------------------------------------------

@dataclass
class AuthCode:
    code: str
    member_id: str
    client_id: str
    user_id: int
    expires_at: float


def _codes(sandbox: Sandbox) -> dict[str, AuthCode]:
    codes = getattr(sandbox, "oauth_codes", None)
    if codes is None:
        codes = sandbox.oauth_codes = {}
    return codes


def issue_code(sandbox: Sandbox, portal: PortalState, client_id: str, user_id: int) -> str:
    """Mint a one-time authorization code valid for 30 seconds."""
    code = secrets.token_hex(16)
    with sandbox.lock:
        _codes(sandbox)[code] = AuthCode(code, portal.member_id, client_id, user_id, time.time() + CODE_LIFETIME)
    return code


def _installed(portal: PortalState, client_id: str) -> bool:
    inst = portal.installations.get(client_id)
    return inst is not None and not getattr(inst, "uninstalled", False)


# -- HTTP ------------------------------------------------------------------------------------

def _sandbox() -> Sandbox:
    return current_app.config["SANDBOX"]


def _params() -> dict[str, Any]:
    out: dict[str, Any] = dict(request.args.items())
    out.update(request.form.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            out.update(body)
    return out


def _oauth_error(code: str, description: str, status: int = 400):
    return jsonify({"error": code, "error_description": description}), status


@bp.route("/oauth/authorize/", methods=["GET"])
def authorize():
    """The portal's consent page: redirect to the app's URL with a code (PROTOCOL.md §2.1).

    `user_id` (sandbox only) picks the signed-in user; a real portal uses its session cookie.
    Errors are shown as a portal page (plain text, HTTP 400): there is no redirect on failure.
    """
    sandbox = _sandbox()
    portal = sandbox.portal_by_domain(request.host)
    client_id = request.args.get("client_id", "")
    if portal is None:
        return "Portal not found", 404
    app = sandbox.apps.get(client_id)
    if app is None or not _installed(portal, client_id):
        return "The application is not installed on this portal (invalid client_id).", 400
    try:
        user_id = int(request.args.get("user_id", "1"))
    except ValueError:
        return "Wrong user_id", 400
    code = issue_code(sandbox, portal, client_id, user_id)
    inst = portal.installations[client_id]
    query = {
        "code": code,
        "state": request.args.get("state", ""),
        "domain": portal.domain,
        "member_id": portal.member_id,
        "scope": ",".join(inst.scopes),
        "server_domain": server_domain(sandbox),
    }
    target = app.handler_url or app.install_url
    sep = "&" if "?" in target else "?"
    return redirect(f"{target}{sep}{urlencode(query)}", code=302)


@bp.route("/oauth/token/", methods=["GET", "POST"])
@bp.route(f"{PREFIX}/oauth/token/", methods=["GET", "POST"])
def token():
    """Token endpoint: `authorization_code` and `refresh_token` grants (PROTOCOL.md §2.1-2.3)."""
    sandbox = _sandbox()
    p = _params()
    grant = p.get("grant_type")
    client_id, secret = p.get("client_id"), p.get("client_secret")
    if grant not in ("authorization_code", "refresh_token") or not client_id:
        return _oauth_error("invalid_request", "An incorrectly formatted authorization request was provided")
    with sandbox.lock:
        app = sandbox.apps.get(str(client_id))
        if app is None or app.client_secret != secret:
            return _oauth_error("invalid_client", "Invalid client data was provided")
        if grant == "authorization_code":
            grant_obj = _codes(sandbox).pop(str(p.get("code", "")), None)
            if grant_obj is None or grant_obj.client_id != client_id or grant_obj.expires_at < time.time():
                return _oauth_error("invalid_grant", "Invalid authorization code")
            user_id = grant_obj.user_id
        else:
            grant_obj = sandbox.refresh_tokens.get(str(p.get("refresh_token", "")))
            if (grant_obj is None or grant_obj.used or grant_obj.client_id != client_id
                    or grant_obj.expires_at < time.time()):
                return _oauth_error("invalid_grant", "Invalid refresh token")
            grant_obj.used = True  # single use: a second refresh with it is invalid_grant
            user_id = grant_obj.user_id
        portal = sandbox.portals.get(grant_obj.member_id)
        if portal is None or portal.deleted or not _installed(portal, client_id):
            return _oauth_error("invalid_grant", "The application is not installed")
        if portal.payment_required:
            return _oauth_error("PAYMENT_REQUIRED", "Payment required", 401)
        inst = portal.installations[client_id]
        access, refresh = sandbox.issue_tokens(portal, client_id, user_id, list(inst.scopes))
        return jsonify(token_response(sandbox, portal, client_id, access, refresh))


@bp.route(f"{PREFIX}/rest/app.info", methods=["GET", "POST"])
@bp.route(f"{PREFIX}/rest/app.info.json", methods=["GET", "POST"])
def server_app_info():
    """`app.info` on the OAuth server: which app, portal and user a token belongs to (PROTOCOL.md §6.4)."""
    sandbox = _sandbox()
    started = time.time()
    token_value = str(_params().get("auth", ""))
    with sandbox.lock:
        tok = sandbox.access_tokens.get(token_value)
        if tok is None or tok.client_id is None:
            return _oauth_error("invalid_token", "The access token provided is invalid.", 401)
        if tok.expired:
            return _oauth_error("expired_token", "The access token provided has expired.", 401)
        portal = sandbox.portals.get(tok.member_id)
        inst = portal.installations.get(tok.client_id) if portal else None
        if portal is None or inst is None:
            return _oauth_error("invalid_token", "The access token provided is invalid.", 401)
        result = {
            "client_id": tok.client_id,
            "scope": ",".join(tok.scopes),
            "expires": datetime.fromtimestamp(tok.expires_at, timezone.utc).isoformat(),
            "install": {
                "installed": bool(inst.installed),
                "version": inst.version,
                "status": app_status(sandbox, portal, tok.client_id),
                "scope": ",".join(inst.scopes),
                "domain": portal.domain,
                "uri": portal.client_endpoint.rsplit("/rest/", 1)[0],
                "client_endpoint": portal.client_endpoint,
                "member_id": portal.member_id,
                "member_type": "PORTAL",
            },
            "user_id": tok.user_id,
        }
    return jsonify({"result": result, "time": time_block(started)})


def time_block(started: float) -> dict[str, Any]:
    """A `time` block like the portal's (PROTOCOL.md §3.3)."""
    finish = time.time()
    fmt = lambda t: datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")  # noqa: E731
    return {"start": started, "finish": finish, "duration": finish - started, "processing": finish - started,
            "date_start": fmt(started), "date_finish": fmt(finish), "operating": 0}
