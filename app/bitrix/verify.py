"""Authenticating what a portal sends, and the frame sessions that follow (PROTOCOL.md §5.4, §6.4, §10).

* Events, robot calls, uninstall: `auth[application_token]` compared in constant time with the value stored
  for `auth[member_id]` (`portal_for_application_token`). Unknown portal or mismatch: `VerificationFailed`
  (401), logged without secrets.
* Install and update callbacks carry a fresh access token: it is checked against the OAuth server's
  `app.info` (our client id, the claimed member id and domain) — `verify_access_token`. The OAuth server is
  the configured `B24_OAUTH_URL`, never an address taken from the payload.
* App page and placement POSTs (`verify_frame`): `APPLICATION_TOKEN` as above; where a portal does not send
  it, `AUTH_ID` through `app.info`.
* After that the page carries a short-lived signed token (JOSE JWT, HS256, key derived from SECRET_KEY) that
  its own API calls send as `Authorization: Bearer ...` — no third-party cookies in the iframe
  (`issue_frame_token`, `read_frame_token`, `frame_auth_required`).
* Frame responses allow framing by that portal only: `Content-Security-Policy: frame-ancestors` and no
  `X-Frame-Options` (`allow_framing`).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import select

from ..db import db_session
from ..models import ConnectionKind, Portal
from .payload import BadPayload, text

log = logging.getLogger("hub24.verify")

FRAME_TOKEN_TTL = 15 * 60  # seconds; the page asks for a new one by being reopened
FRAME_AUDIENCE = "hub24-frame"
_DUMMY = "x" * 32
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")
_MEMBER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class VerificationFailed(Exception):
    """The request could not be shown to come from the portal it names: answer `status` (401) with `message`."""

    def __init__(self, message: str, *, reason: str, member_id: str = "", status: int = 401):
        super().__init__(message)
        self.message, self.reason, self.member_id, self.status = message, reason, member_id, status


class VerifierUnavailable(VerificationFailed):
    """The OAuth server could not be asked (network, outage): answer 503, the portal may retry."""

    def __init__(self, message: str, *, reason: str, member_id: str = ""):
        super().__init__(message, reason=reason, member_id=member_id, status=503)


def refuse(kind: str, exc: VerificationFailed) -> None:
    """One log line for a refused callback: kind, reason, member id — never a token."""
    log.warning("refused %s: %s", kind, exc.reason,
                extra={"member_id": exc.member_id[:64], "refused": kind, "reason": exc.reason})


def constant_time_equal(a: str | None, b: str | None) -> bool:
    """Compare two secrets without leaking where they differ (and treat missing values as unequal)."""
    ok = a is not None and b is not None and a != ""
    return hmac.compare_digest((a or _DUMMY).encode(), (b or "").encode()) and ok


def valid_member_id(member_id: str) -> bool:
    return bool(_MEMBER.match(member_id or ""))


def find_portal(member_id: str) -> Portal | None:
    """The portal stored for `member_id`, or None."""
    if not valid_member_id(member_id):
        return None
    return db_session().scalar(select(Portal).where(Portal.member_id == member_id))


def portal_for_application_token(member_id: str, application_token: str, *, allow_uninstalled: bool = False) -> Portal:
    """The installed portal `member_id` whose stored application token equals `application_token`.

    Raises VerificationFailed (401) for an unknown or uninstalled portal, a webhook-connected portal, or a
    mismatch. The comparison runs in constant time even when the portal is unknown.
    """
    portal = find_portal(member_id)
    stored = portal.application_token if portal is not None else None
    matches = constant_time_equal(stored, application_token)
    if portal is None:
        raise VerificationFailed("Unknown portal: install Hub24 first.", reason="unknown_member_id", member_id=member_id)
    if portal.connection_kind == ConnectionKind.webhook:
        raise VerificationFailed("This portal is connected by an incoming webhook; events, robots and placements "
                                 "need Hub24 installed as an application.", reason="webhook_portal",
                                 member_id=member_id, status=403)
    if not portal.is_installed and not allow_uninstalled:
        raise VerificationFailed("Hub24 is not installed on this portal.", reason="not_installed", member_id=member_id)
    if not matches:
        raise VerificationFailed("The application token does not match this portal.", reason="token_mismatch",
                                 member_id=member_id)
    return portal


# -- the OAuth server's app.info -------------------------------------------------------------

@dataclass(frozen=True)
class AppInfo:
    """What the OAuth server says an access token belongs to."""

    client_id: str
    member_id: str
    domain: str
    client_endpoint: str
    scopes: tuple[str, ...]
    installed: bool
    user_id: int | None


def oauth_app_info(access_token: str) -> AppInfo:
    """Ask the OAuth server (`B24_OAUTH_URL`/rest/app.info) who `access_token` belongs to.

    Uses b24pysdk, pointed at the configured OAuth server by `app.bitrix.sdk` (applied in create_app). Raises
    VerificationFailed (401) when the server rejects the token, VerifierUnavailable (503) when it cannot be
    reached or answers nonsense.
    """
    from b24pysdk import BitrixApp
    from b24pysdk.errors import BitrixAPIError, BitrixRequestError, BitrixResponseJSONDecodeError, BitrixSDKException

    cfg = current_app.config
    app = BitrixApp(client_id=cfg["B24_CLIENT_ID"] or "unset", client_secret=cfg["B24_CLIENT_SECRET"] or "unset")
    try:
        result = app.get_app_info(access_token).result
    except BitrixAPIError as exc:
        status = getattr(exc, "status_code", None) or 0
        if status >= 500:
            raise VerifierUnavailable("The Bitrix24 OAuth server is unavailable; try again.", reason="oauth_down") from None
        raise VerificationFailed("The access token was not accepted by the Bitrix24 OAuth server.",
                                 reason="oauth_rejected") from None
    except (BitrixRequestError, BitrixResponseJSONDecodeError) as exc:
        raise VerifierUnavailable("The Bitrix24 OAuth server could not be reached; try again.",
                                  reason=f"oauth_unreachable:{type(exc).__name__}") from None
    except (BitrixSDKException, KeyError, ValueError, TypeError) as exc:
        raise VerifierUnavailable("The Bitrix24 OAuth server answered something unexpected.",
                                  reason=f"oauth_bad_answer:{type(exc).__name__}") from None
    install = result.install
    return AppInfo(client_id=str(result.client_id), member_id=str(install.member_id), domain=str(install.domain),
                   client_endpoint=str(install.client_endpoint), scopes=tuple(s for s in install.scope if s),
                   installed=bool(install.installed),
                   user_id=int(result.user_id) if str(getattr(result, "user_id", "") or "").isdigit() else None)


def verify_access_token(access_token: str, member_id: str, domain: str | None = None) -> AppInfo:
    """Check that `access_token` is Hub24's token for portal `member_id` (and `domain` when given).

    Raises VerificationFailed (401) on any mismatch; VerifierUnavailable (503) if the OAuth server is down.
    """
    if not access_token:
        raise VerificationFailed("No access token to verify.", reason="no_access_token", member_id=member_id)
    info = oauth_app_info(access_token)
    expected_client = current_app.config["B24_CLIENT_ID"]
    if not expected_client or not constant_time_equal(info.client_id, expected_client):
        raise VerificationFailed("The token belongs to another application.", reason="client_id_mismatch",
                                 member_id=member_id)
    if info.member_id != member_id:
        raise VerificationFailed("The token belongs to another portal.", reason="member_id_mismatch", member_id=member_id)
    if domain is not None and info.domain.lower() != domain.lower():
        raise VerificationFailed("The token belongs to another portal domain.", reason="domain_mismatch",
                                 member_id=member_id)
    return info


# -- frame POSTs (app page, install page, placements) --------------------------------------

@dataclass
class FrameRequest:
    """A frame POST (PROTOCOL.md §1.3, §6.3), fields checked for shape only."""

    member_id: str
    domain: str
    protocol: str  # "1" https, "0" http
    lang: str
    placement: str
    options: dict[str, Any] = field(default_factory=dict)
    auth_id: str = field(default="", repr=False)
    refresh_id: str = field(default="", repr=False)
    auth_expires: int = 3600
    application_token: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ()


def parse_frame(body: dict[str, Any], query: dict[str, str]) -> FrameRequest:
    """Read a frame POST; raises BadPayload naming the first missing or malformed field."""
    member_id = text(body, "member_id", max_len=64, required=True)
    if not valid_member_id(member_id):
        raise BadPayload("member_id is malformed")
    domain = query.get("DOMAIN") or text(body, "DOMAIN", max_len=255)
    if not domain or not _DOMAIN.match(domain):
        raise BadPayload("DOMAIN (in the query string) is missing or malformed")
    protocol = query.get("PROTOCOL") or text(body, "PROTOCOL", max_len=1) or "1"
    if protocol not in ("0", "1"):
        raise BadPayload("PROTOCOL must be 0 or 1")
    lang = (query.get("LANG") or text(body, "LANG", max_len=8) or "en")[:8]
    if not re.fullmatch(r"[a-z]{2}(-[a-z]{2})?", lang.lower()):
        raise BadPayload("LANG is malformed")
    placement = text(body, "PLACEMENT", max_len=64) or "DEFAULT"
    if not re.fullmatch(r"[A-Z0-9_]+", placement):
        raise BadPayload("PLACEMENT is malformed")
    raw_options = text(body, "PLACEMENT_OPTIONS", max_len=16 * 1024)
    options: dict[str, Any] = {}
    if raw_options:
        try:
            options = json.loads(raw_options)
        except ValueError:
            raise BadPayload("PLACEMENT_OPTIONS is not valid JSON") from None
        if isinstance(options, list) and not options:
            options = {}  # PHP encodes an empty array as []
        if not isinstance(options, dict):
            raise BadPayload("PLACEMENT_OPTIONS must be a JSON object")
    expires = text(body, "AUTH_EXPIRES", max_len=10) or "3600"
    if not expires.isdigit():
        raise BadPayload("AUTH_EXPIRES must be a number of seconds")
    scopes = tuple(s for s in re.split(r"[,\s]+", text(body, "APPLICATION_SCOPE", max_len=1024)) if s)
    return FrameRequest(member_id=member_id, domain=domain.lower(), protocol=protocol, lang=lang.lower()[:2],
                        placement=placement, options=options, auth_id=text(body, "AUTH_ID", max_len=256),
                        refresh_id=text(body, "REFRESH_ID", max_len=256), auth_expires=int(expires),
                        application_token=text(body, "APPLICATION_TOKEN", max_len=256), scopes=scopes)


def verify_frame(frame: FrameRequest) -> Portal:
    """The installed portal a frame POST comes from.

    `APPLICATION_TOKEN` when present (constant-time compare); otherwise `AUTH_ID` checked with the OAuth
    server's `app.info`. Raises VerificationFailed (401) / VerifierUnavailable (503).
    """
    if frame.application_token:
        return portal_for_application_token(frame.member_id, frame.application_token)
    if not frame.auth_id:
        raise VerificationFailed("The request carries neither APPLICATION_TOKEN nor AUTH_ID.", reason="no_credentials",
                                 member_id=frame.member_id)
    portal = find_portal(frame.member_id)
    if portal is None or not portal.is_installed or portal.connection_kind != ConnectionKind.oauth_app:
        raise VerificationFailed("Hub24 is not installed on this portal.", reason="not_installed",
                                 member_id=frame.member_id)
    verify_access_token(frame.auth_id, frame.member_id, frame.domain)
    return portal


# -- frame tokens ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameClaims:
    """Who a frame token was issued to."""

    portal_id: int
    member_id: str
    placement: str
    user_id: int | None
    expires_at: int
    admin: bool = False  # Bitrix24 said this user is a portal administrator when the frame was opened


def _key() -> OctKey:
    secret = current_app.config["SECRET_KEY"].encode()
    return OctKey.import_key(hmac.new(secret, b"hub24 frame token v1", hashlib.sha256).digest())


def issue_frame_token(portal: Portal, placement: str, user_id: int | None = None, ttl: int = FRAME_TOKEN_TTL,
                      *, admin: bool = False) -> str:
    """A signed token for the page's own API calls (bearer), valid `ttl` seconds.

    `admin` is set only when the portal itself (`profile` with the frame's AUTH_ID) said the user is an
    administrator; admin-only API calls require it.
    """
    now = int(time.time())
    claims = {"iss": "hub24", "aud": FRAME_AUDIENCE, "sub": portal.member_id, "pid": portal.id, "plc": placement,
              "iat": now, "exp": now + ttl}
    if user_id is not None:
        claims["uid"] = user_id
    if admin:
        claims["adm"] = True
    return jwt.encode({"alg": "HS256"}, claims, _key())


def read_frame_token(token: str) -> FrameClaims:
    """Validate a frame token; raises VerificationFailed (401) when forged, expired or malformed."""
    if not token or len(token) > 2048:
        raise VerificationFailed("A frame token is required (Authorization: Bearer ...).", reason="no_frame_token")
    try:
        decoded = jwt.decode(token, _key(), algorithms=["HS256"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": "hub24"},
                              aud={"essential": True, "value": FRAME_AUDIENCE},
                              exp={"essential": True}, sub={"essential": True}).validate(decoded.claims)
        c = decoded.claims
        pid, uid = c.get("pid"), c.get("uid")
        if not isinstance(pid, int) or (uid is not None and not isinstance(uid, int)):
            raise ValueError("bad claims")
        return FrameClaims(portal_id=pid, member_id=str(c["sub"]), placement=str(c.get("plc", "")),
                           user_id=uid, expires_at=int(c["exp"]), admin=c.get("adm") is True)
    except (JoseError, ValueError, TypeError, KeyError):
        raise VerificationFailed("The frame token is invalid or expired; reopen the page.",
                                 reason="bad_frame_token") from None


def portal_for_frame_token(token: str) -> tuple[FrameClaims, Portal]:
    """A frame token's claims and its installed portal; raises VerificationFailed (401) otherwise."""
    claims = read_frame_token(token)
    portal = db_session().get(Portal, claims.portal_id)
    if portal is None or portal.member_id != claims.member_id or not portal.is_installed:
        raise VerificationFailed("Hub24 is no longer installed on this portal.", reason="portal_gone",
                                 member_id=claims.member_id)
    return claims, portal


def frame_auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for API views called from a frame page: a valid bearer frame token or 401 JSON.

    Sets `g.frame` (FrameClaims) and `g.portal` (the installed Portal).
    """
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        try:
            claims, portal = portal_for_frame_token(token)
        except VerificationFailed as exc:
            refuse("frame api call", exc)
            resp = jsonify(error="unauthorized", message=exc.message)
            resp.headers["WWW-Authenticate"] = 'Bearer realm="hub24-frame"'
            return resp, 401
        g.frame, g.portal, g.member_id = claims, portal, portal.member_id
        return view(*args, **kwargs)

    return wrapper


def allow_framing(response: Response, domain: str, protocol: str = "1") -> Response:
    """Let exactly this portal frame the page: CSP frame-ancestors, and no X-Frame-Options."""
    scheme = "https" if protocol == "1" else "http"
    host = domain if _DOMAIN.match(domain or "") else ""
    sources = "'self'" + (f" {scheme}://{host}" if host else "")
    response.headers["Content-Security-Policy"] = f"frame-ancestors {sources}"
    response.headers.pop("X-Frame-Options", None)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
