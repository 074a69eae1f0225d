"""A portal's OAuth tokens: read from and written to `PortalToken` (encrypted), refreshed one process at a time.

Bitrix24 refresh tokens are single-use (PROTOCOL.md §2.2): if two workers refresh with the same one, the
second gets ``invalid_grant`` and the portal is lost. So a refresh runs in its own short transaction
holding the token row's lock (``SELECT ... FOR UPDATE``), which every process on every machine honours.
A process that waited for the lock re-reads the row and, when another process has just put a new
access token there, adopts it instead of spending the refresh token again.

When the grant is gone for good (``invalid_grant``, ``PAYMENT_REQUIRED``, ``PORTAL_DELETED``, or auth still
failing after a refresh) the portal is marked ``needs_reinstall`` (status, flag and reason), a log line
says so without secrets, and `AuthLost` is raised; callers stop working on that portal.

Token upkeep: refresh tokens live 180 days. An active portal refreshes about hourly on its own (its
access token expires), so nothing runs on a timer for it; `upkeep_idle_tokens` (periodic, `maintenance`
queue) refreshes only portals whose refresh token has been idle for `IDLE_REFRESH_AFTER`.
"""
from __future__ import annotations

import importlib
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping
from urllib.parse import urlparse

from b24pysdk import BitrixApp
from b24pysdk import errors as sdk_errors
from flask import current_app
from sqlalchemy import or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..db import db_session
from ..models.portal import ConnectionKind, Portal, PortalStatus, PortalToken
from .errors import AuthError, AuthLost, BitrixError, TransportError

log = logging.getLogger(__name__)

_oauth_requester = importlib.import_module("b24pysdk.api.requesters.bitrix_oauth_requester")

REFRESH_AHEAD = timedelta(seconds=60)  # refresh this long before a known expiry
IDLE_REFRESH_AFTER = timedelta(days=150)  # refresh tokens live 180 days; keep idle grants alive
LOCK_TIMEOUT_MS = 30_000  # never wait longer than this for another process's refresh
OAUTH_TIMEOUT = 20  # seconds for one call to the OAuth server
LOST_CODES = {"INVALID_GRANT", "PAYMENT_REQUIRED", "PORTAL_DELETED", "NOT_INSTALLED", "APPLICATION_NOT_FOUND"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class TokenSet:
    """What a client needs to call a portal: the access token and where to send it."""

    portal_id: int
    member_id: str
    domain: str
    client_endpoint: str
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:  # never show the tokens
        return f"<TokenSet portal={self.portal_id} domain={self.domain} expires_at={self.expires_at}>"

    def expires_soon(self, now: datetime | None = None) -> bool:
        """True when the access token's known expiry is within `REFRESH_AHEAD` (False when unknown)."""
        return self.expires_at is not None and self.expires_at - (now or utcnow()) <= REFRESH_AHEAD


@contextmanager
def own_transaction() -> Iterator[Session]:
    """A session in its own short transaction, committed on success.

    It binds to whatever the app's session is bound to: the engine in production (a connection and
    transaction of its own), or the test's connection (then a savepoint inside the test transaction).
    """
    bind = db_session().get_bind()
    with Session(bind=bind, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
        with s.begin():
            yield s
    _expire_in_app_session()


def _expire_in_app_session() -> None:
    # The app's own session may hold the portal or its token; make it re-read what we just committed.
    sess = db_session()
    for obj in list(sess.identity_map.values()):
        if isinstance(obj, (Portal, PortalToken)):
            sess.expire(obj)


def _as_set(portal: Portal, tok: PortalToken | None) -> TokenSet:
    return TokenSet(portal_id=portal.id, member_id=portal.member_id, domain=portal.domain,
                    client_endpoint=portal.client_endpoint or f"https://{portal.domain}/rest/",
                    access_token=tok.access_token if tok else None,
                    refresh_token=tok.refresh_token if tok else None,
                    expires_at=_aware(tok.expires_at) if tok else None)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _check_usable(portal: Portal | None, portal_id: int) -> Portal:
    if portal is None:
        raise AuthLost("PORTAL_NOT_FOUND", f"portal {portal_id} is not known to Hub24")
    if portal.needs_reinstall or portal.status == PortalStatus.needs_reinstall:
        raise AuthLost("NEEDS_REINSTALL", portal.needs_reinstall_reason or "the portal needs reinstalling")
    if portal.status == PortalStatus.uninstalled:
        raise AuthLost("UNINSTALLED", "Hub24 was uninstalled from this portal")
    return portal


def load(portal_id: int) -> TokenSet:
    """The portal's current tokens and endpoints, read fresh from the database.

    Raises AuthLost when the portal is unknown, uninstalled or marked needs_reinstall, and AuthError
    when an OAuth portal has no stored access token.
    """
    with own_transaction() as s:
        portal = _check_usable(s.get(Portal, portal_id), portal_id)
        tok = s.execute(select(PortalToken).where(PortalToken.portal_id == portal_id)).scalar_one_or_none()
        out = _as_set(portal, tok)
    if portal.connection_kind == ConnectionKind.oauth_app and not out.access_token:
        raise AuthError("NO_TOKEN", f"portal {portal_id} has no stored access token")
    return out


def save(portal_id: int, payload: Mapping[str, Any], *, session: Session | None = None) -> None:
    """Store a token answer (install POST, ONAPPINSTALL `auth[...]`, or an OAuth token response).

    Reads `access_token`/`AUTH_ID`, `refresh_token`/`REFRESH_ID`, `expires` (unix time) or
    `expires_in`/`AUTH_EXPIRES` (seconds), `user_id`, `client_endpoint`. Writes through `session` when
    given (the caller commits), else in a transaction of its own. Raises ValueError without an access
    token.
    """
    if session is None:
        with own_transaction() as s:
            save(portal_id, payload, session=s)
        return
    access = payload.get("access_token") or payload.get("AUTH_ID")
    if not access:
        raise ValueError("a token answer without access_token")
    tok = session.execute(select(PortalToken).where(PortalToken.portal_id == portal_id)
                          .with_for_update()).scalar_one_or_none()
    if tok is None:
        tok = PortalToken(portal_id=portal_id)
        session.add(tok)
    _write(tok, payload, now=utcnow())


def _expiry(payload: Mapping[str, Any], now: datetime) -> datetime | None:
    try:
        if payload.get("expires"):
            return datetime.fromtimestamp(int(payload["expires"]), timezone.utc)
        seconds = payload.get("expires_in") or payload.get("AUTH_EXPIRES")
        if seconds:
            return now + timedelta(seconds=int(seconds))
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def _write(tok: PortalToken, payload: Mapping[str, Any], now: datetime) -> None:
    tok.access_token = payload.get("access_token") or payload.get("AUTH_ID")
    refresh = payload.get("refresh_token") or payload.get("REFRESH_ID")
    if refresh:
        tok.refresh_token = refresh
    tok.expires_at = _expiry(payload, now)
    if payload.get("user_id"):
        try:
            tok.user_id = int(payload["user_id"])
        except (TypeError, ValueError):
            pass


def refresh(portal_id: int, stale_access_token: str | None = None, *, force: bool = False) -> TokenSet:
    """Get the portal a working access token, spending its refresh token only if nobody else just did.

    Runs under the token row's lock. `stale_access_token` is the token the caller found not working
    (expired, or about to): if the row already holds a different one that is not about to expire,
    another process refreshed while we waited, and that token is returned without calling the OAuth
    server. Otherwise the refresh token is exchanged at the OAuth server (`B24_OAUTH_URL`), the new pair
    stored, `refreshed_at` set, and domain/endpoint updated from the answer. `force` (token upkeep)
    refreshes even a working token, unless the row was refreshed within the last `REFRESH_AHEAD`.

    Raises AuthLost (portal marked needs_reinstall) on invalid_grant / PAYMENT_REQUIRED / PORTAL_DELETED
    or a portal without a refresh token, AuthError on a rejected client id/secret (a Hub24 setting, not
    the portal's fault), TransportError when the OAuth server cannot be reached or the lock is held
    longer than `LOCK_TIMEOUT_MS`.
    """
    lost: AuthLost | None = None
    with own_transaction() as s:
        s.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
        try:
            tok = s.execute(select(PortalToken).where(PortalToken.portal_id == portal_id)
                            .with_for_update()).scalar_one_or_none()
        except OperationalError:  # lock_timeout: another process has been refreshing for too long
            raise TransportError("REFRESH_LOCK_TIMEOUT", "another process holds the token refresh lock") from None
        portal = _check_usable(s.get(Portal, portal_id, populate_existing=True), portal_id)
        now = utcnow()
        current = _as_set(portal, tok)
        if force:
            recent = tok is not None and tok.refreshed_at is not None and now - _aware(tok.refreshed_at) < REFRESH_AHEAD
            if recent:
                return current
        elif current.access_token and current.access_token != stale_access_token and not current.expires_soon(now):
            log.info("token refreshed by another process; adopted", extra={"member_id": portal.member_id})
            return current
        answer = None
        if tok is None or not tok.refresh_token:
            lost = _mark(s, portal, "NO_REFRESH_TOKEN", "no refresh token stored; reinstall the app")
        else:
            try:
                answer = _exchange(tok.refresh_token)
            except AuthLost as exc:
                lost = _mark(s, portal, exc.code, exc.description)
            else:
                if str(answer.get("member_id") or portal.member_id) != portal.member_id:
                    lost = _mark(s, portal, "MEMBER_MISMATCH", "the OAuth server answered for another portal")
                    answer = None
            if answer is not None and tok is not None:
                _write(tok, answer, now)
                tok.refreshed_at = now
                _apply_endpoint(portal, answer.get("client_endpoint"))
                log.info("portal token refreshed", extra={"member_id": portal.member_id})
                return _as_set(portal, tok)
    assert lost is not None
    raise lost


def _exchange(refresh_token: str) -> dict:
    """One refresh at the OAuth server through b24pysdk's requester (no SDK-side retries)."""
    cfg = current_app.extensions["settings"]
    if not cfg.B24_CLIENT_ID or not cfg.B24_CLIENT_SECRET:
        raise AuthError("NO_CLIENT", "B24_CLIENT_ID / B24_CLIENT_SECRET are not set; cannot refresh tokens")
    app = BitrixApp(client_id=cfg.B24_CLIENT_ID, client_secret=cfg.B24_CLIENT_SECRET)
    requester = _oauth_requester.BitrixOAuthRequester(app, timeout=OAUTH_TIMEOUT, max_retries=1)
    try:
        answer = requester.refresh_oauth_token(refresh_token)
    except sdk_errors.BitrixRequestError as exc:
        raise TransportError("OAUTH_UNREACHABLE", type(exc).__name__) from None
    except sdk_errors.BitrixResponseJSONDecodeError as exc:
        raise TransportError("OAUTH_BAD_ANSWER", f"OAuth server answered HTTP {exc.response.status_code}") from None
    except sdk_errors.BitrixAPIError as exc:
        code, status = str(exc.error or ""), exc.status_code
        if code.upper() in LOST_CODES:
            raise AuthLost(code, exc.error_description or code, status) from None
        if code.upper() == "INVALID_CLIENT":
            log.error("the OAuth server rejected B24_CLIENT_ID / B24_CLIENT_SECRET")
        raise AuthError(code, exc.error_description or "", status) from None
    if not isinstance(answer, dict) or not answer.get("access_token"):
        raise TransportError("OAUTH_BAD_ANSWER", "the OAuth server's answer has no access_token")
    return answer


def _apply_endpoint(portal: Portal, client_endpoint: str | None) -> None:
    if client_endpoint:
        host = urlparse(client_endpoint).netloc
        if host and host != portal.domain:
            log.warning("portal domain changed %s -> %s", portal.domain, host, extra={"member_id": portal.member_id})
            portal.domain = host
        portal.client_endpoint = client_endpoint


def _mark(s: Session, portal: Portal, code: str, description: str) -> AuthLost:
    portal.needs_reinstall = True
    portal.needs_reinstall_reason = f"{code}: {description}"[:500]
    portal.status = PortalStatus.needs_reinstall
    log.warning("portal needs reinstall: %s", portal.needs_reinstall_reason, extra={"member_id": portal.member_id})
    return AuthLost(code, description)


def mark_needs_reinstall(portal_id: int, code: str, description: str = "") -> AuthLost:
    """Mark the portal needs_reinstall (status, flag, reason), log it, and return the AuthLost to raise."""
    with own_transaction() as s:
        portal = s.get(Portal, portal_id, populate_existing=True)
        if portal is None:
            return AuthLost(code, description)
        return _mark(s, portal, code, description)


def update_domain(portal_id: int, new_domain: str) -> None:
    """Store a portal's new domain after Bitrix24 answered 302 from the old one.

    Updates `domain`, `client_endpoint` (same scheme, new host) and, for webhook portals, the host of
    `webhook_url`.
    """
    with own_transaction() as s:
        portal = s.get(Portal, portal_id, populate_existing=True)
        if portal is None or portal.domain == new_domain:
            return
        old = portal.domain
        scheme = urlparse(portal.client_endpoint).scheme or "https"
        portal.domain = new_domain
        portal.client_endpoint = f"{scheme}://{new_domain}/rest/"
        if portal.webhook_url:
            u = urlparse(portal.webhook_url)
            portal.webhook_url = u._replace(netloc=new_domain).geturl()
        log.warning("portal domain changed %s -> %s", old, new_domain, extra={"member_id": portal.member_id})


def idle_portals(now: datetime | None = None) -> list[int]:
    """Ids of installed OAuth portals whose refresh token has not been used for `IDLE_REFRESH_AFTER`."""
    cutoff = (now or utcnow()) - IDLE_REFRESH_AFTER
    q = (select(Portal.id).join(PortalToken, PortalToken.portal_id == Portal.id)
         .where(Portal.connection_kind == ConnectionKind.oauth_app,
                Portal.status.in_([PortalStatus.active, PortalStatus.installing]),
                Portal.needs_reinstall.is_(False),
                PortalToken.refresh_token.is_not(None),
                or_(PortalToken.refreshed_at < cutoff,
                    PortalToken.refreshed_at.is_(None) & (PortalToken.updated_at < cutoff)))
         .order_by(Portal.id))
    with own_transaction() as s:
        return list(s.execute(q).scalars())


def upkeep_idle_tokens() -> dict:
    """Periodic job: refresh the grant of every portal idle for `IDLE_REFRESH_AFTER` (before it lapses).

    Active portals are not touched (they refresh on their own when their access token expires). A
    portal whose grant is already gone is marked needs_reinstall by `refresh`; that is recorded, not
    raised, so one lost portal does not stop the others. Other failures are raised after every portal
    was tried, so RQ records the job as failed.
    """
    done, lost, failed = [], [], []
    for portal_id in idle_portals():
        try:
            refresh(portal_id, stale_access_token=None, force=True)
            done.append(portal_id)
        except AuthLost:
            lost.append(portal_id)
        except BitrixError as exc:
            log.warning("token upkeep failed for portal %s: %s", portal_id, exc.code)
            failed.append(portal_id)
    if failed:
        raise TransportError("UPKEEP_FAILED", f"token upkeep failed for portals {failed}")
    return {"refreshed": done, "lost": lost}
