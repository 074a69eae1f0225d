"""The per-portal gateway: `client_for(portal_id) -> PortalClient`, on b24pysdk.

b24pysdk does the HTTP (URLs, encoding, response parsing, its typed errors). The gateway adds what the
SDK lacks (DESIGN.md, Decisions):

* tokens from the database, refreshed through `tokens.refresh` (row lock, adoption) — the SDK token is
  subclassed so even the SDK's own refresh path goes there;
* the shared per-portal leaky bucket (`ratelimit`) before every request;
* backoff on 503 ``QUERY_LIMIT_EXCEEDED`` / 429 ``OPERATION_TIME_LIMIT`` inside jobs; inside a web request
  (or with ``interactive=True``) `RateLimited` is raised at once, never slept on;
* a 302 from an old domain updates the stored domain and the call is repeated on the new one;
* errors mapped onto `app.bitrix.errors`; `AuthLost` (portal marked needs_reinstall) when the grant is gone;
* `batch` in chunks of 50 with per-command errors raised, and `list_all` by keyset paging that never
  returns a silently short list.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import urlparse

from b24pysdk import BitrixApp, BitrixToken, BitrixWebhook
from b24pysdk import errors as sdk_errors
from b24pysdk.utils.encoding import encode_params
from flask import current_app, has_request_context

from ..db import db_session
from ..models.portal import ConnectionKind, Portal
from . import ratelimit, tokens
from .errors import (RATE_CODES, AuthError, AuthLost, BatchCommandError, BitrixError, IncompleteListError, MethodError,
                     RateLimited, ScopeMissing, TokenExpired, TransportError)

log = logging.getLogger(__name__)

BATCH_SIZE = 50  # Bitrix24's limit of commands per batch (PROTOCOL.md §4.3)
PAGE_SIZE = 50  # list methods always answer 50 per page (§4.4)
REQUEST_TIMEOUT = 65  # seconds; Bitrix24 cuts a request at 60 s
WEB_MAX_WAIT = 2.0  # seconds a web request may queue in the rate limiter before RateLimited
JOB_MAX_BACKOFF = 900.0  # seconds a job may spend backing off on 503/429 within one call
OPERATING_KEY = "hub24:operating:"  # + member_id:method -> operating_reset_at (unix time)
AUTH_RETRY_CODES = {"EXPIRED_TOKEN", "NO_AUTH_FOUND", "INVALID_TOKEN"}
LOST_CODES = {"PORTAL_DELETED", "PAYMENT_REQUIRED"}
# method -> (id field, key holding the items in `result` or None, how to ask for ascending ids)
KEYSET: dict[str, tuple[str, str | None, str]] = {"crm.item.list": ("id", "items", "order"),
                                                   "user.get": ("ID", None, "sort")}
KEYSET_DEFAULT = ("ID", None, "order")


class _DbToken(BitrixToken):
    """b24pysdk's OAuth token whose refresh goes through `tokens.refresh` (lock, adoption, storage)."""

    # The SDK would keep only the redirect's hostname (dropping a port) and not persist it; the gateway
    # handles 302 itself.
    _AUTO_CHANGED_DOMAIN = False

    def __init__(self, ts: tokens.TokenSet, app: BitrixApp):
        super().__init__(domain=ts.domain, auth_token=ts.access_token or "", refresh_token=ts.refresh_token,
                         expires=ts.expires_at, bitrix_app=app)
        self.token_set = ts

    @property
    def has_expired(self) -> bool:  # ahead of a known expiry, so a call never starts on a dying token
        return self.token_set.expires_soon()

    def refresh_and_set_oauth_token(self, **kwargs: Any) -> None:
        """Refresh through the database (never with a refresh token another process may have spent)."""
        self.token_set = tokens.refresh(self.token_set.portal_id, stale_access_token=self.auth_token)
        self.auth_token = self.token_set.access_token or ""
        self.refresh_token = self.token_set.refresh_token
        self.expires = self.token_set.expires_at
        self.domain = self.token_set.domain


class _Webhook(BitrixWebhook):
    """b24pysdk's webhook token; 302s are handled by the gateway (see `_DbToken`)."""

    _AUTO_CHANGED_DOMAIN = False


@dataclass
class BatchResult:
    """What one batch request returned, by command key."""

    result: dict
    errors: dict
    total: dict
    next: dict
    time: dict


class PortalClient:
    """The gateway to one portal. Build it with `client_for`; cheap, so build one per job or request."""

    def __init__(self, portal: Portal, token_set: tokens.TokenSet | None, *, interactive: bool | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.portal_id = portal.id
        self.member_id = portal.member_id
        self.domain = portal.domain
        self.is_webhook = portal.connection_kind == ConnectionKind.webhook
        self._interactive = interactive
        self._sleep = sleep
        self._redis = current_app.extensions["redis"]
        self.limiter = ratelimit.limiter_for(self._redis, portal.member_id, portal.plan)
        if self.is_webhook:
            url = urlparse(portal.webhook_url or "")
            parts = url.path.split("/rest/", 1)[-1].strip("/")
            self.token: BitrixToken | BitrixWebhook = _Webhook(domain=url.netloc, webhook_token=parts)
        else:
            cfg = current_app.extensions["settings"]
            assert token_set is not None
            self.token = _DbToken(token_set, BitrixApp(client_id=cfg.B24_CLIENT_ID or "-",
                                                       client_secret=cfg.B24_CLIENT_SECRET or "-"))

    def __repr__(self) -> str:
        return f"<PortalClient {self.member_id} {self.token.domain}>"

    @property
    def interactive(self) -> bool:
        """True inside a web request (or when asked): rate limits raise instead of sleeping."""
        return has_request_context() if self._interactive is None else self._interactive

    # -- single calls -----------------------------------------------------------------------------
    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call `method` and return its `result`.

        Raises RateLimited (web: at once; jobs: after `JOB_MAX_BACKOFF` of backing off), AuthLost (portal
        marked needs_reinstall), AuthError, ScopeMissing, MethodError, TransportError.
        """
        return self.call_raw(method, params)["result"]

    def call_raw(self, method: str, params: Mapping[str, Any] | None = None) -> dict:
        """Call `method` and return the whole envelope (`result`, `total`, `next`, `time`). Raises as `call`."""
        return self._with_backoff(method, lambda: self._send(method, dict(params or {})))

    # -- batch ------------------------------------------------------------------------------------
    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]] | Sequence[tuple[str, Mapping[str, Any]]],
              halt: bool = False) -> dict:
        """Run `commands` ({key: (method, params)} or a list) in batch requests of 50; results by key.

        A command's params may use ``$result[key]...`` references to commands of the same chunk of 50.
        Raises BatchCommandError for the first failed command (in order) with `.errors` (every failed
        key -> {error, error_description}) and `.results` (what succeeded); with `halt`, chunks after a
        failure are not sent. Raises as `call` for failures of the batch request itself.
        """
        items = list(commands.items()) if isinstance(commands, Mapping) else list(enumerate(commands))
        results: dict = {}
        errors: dict = {}
        for i in range(0, len(items), BATCH_SIZE):
            chunk = dict(items[i:i + BATCH_SIZE])
            out = self.batch_raw(chunk, halt=halt)
            results.update(out.result)
            errors.update(out.errors)
            if errors and halt:
                break
        if errors:
            first = next(k for k, _ in items if k in errors)
            err = errors[first]
            exc = BatchCommandError(str(first), str(err.get("error", "")), str(err.get("error_description", "")),
                                    method=dict(items)[first][0])
            exc.errors, exc.results = errors, results  # type: ignore[attr-defined]
            raise exc
        return results

    def batch_raw(self, commands: Mapping[Any, tuple[str, Mapping[str, Any]]], halt: bool = False) -> BatchResult:
        """One batch request of at most 50 commands; per-command errors are returned, not raised.

        Raises ValueError for more than 50 commands, and as `call` for the batch request itself.
        """
        if not commands:
            return BatchResult({}, {}, {}, {}, {})
        if len(commands) > BATCH_SIZE:
            raise ValueError(f"a batch holds at most {BATCH_SIZE} commands")
        cmd = {str(k): f"{m}?{encode_params(dict(p or {}))}" for k, (m, p) in commands.items()}
        env = self.call_raw("batch", {"cmd": cmd, "halt": 1 if halt else 0})
        res = env.get("result") or {}
        as_map = lambda v: v if isinstance(v, dict) else dict(enumerate(v or []))  # noqa: E731  PHP [] = {}
        keys = {str(k): k for k in commands}
        back = lambda d: {keys.get(str(k), k): v for k, v in as_map(d).items()}  # noqa: E731
        out = BatchResult(back(res.get("result")), back(res.get("result_error")), back(res.get("result_total")),
                          back(res.get("result_next")), back(res.get("result_time")))
        # Each nested call counts against its own method's operating time (PROTOCOL.md §4.2): remember the
        # latest reset moment per method, so a 429 inside a later batch waits exactly long enough.
        noted: set[str] = set()
        for key, t in reversed(list(out.time.items())):
            method = commands[key][0] if key in commands else None
            if method and method.lower() not in noted and isinstance(t, Mapping):
                noted.add(method.lower())
                self._note_operating(method, {"time": t})
        return out

    def pause(self, code: str, method: str) -> float:
        """Wait out a rate limit met inside a batch (`code` QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT or
        OVERLOAD_LIMIT on `method`) before reading on; returns the seconds waited.

        In a web request raises RateLimited at once (with `retry_after`); in a job sleeps until the
        method's operating time frees up (429) or a short pause (503, after marking the bucket full).
        """
        code = code.upper()
        wait = self._retry_after(code, method)
        if code == "QUERY_LIMIT_EXCEEDED":
            self.limiter.fill()
        if self.interactive:
            raise RateLimited(code, f"{method} is rate-limited by the portal", retry_after=wait, method=method)
        log.info("%s on %s inside a batch; waiting %.1fs", code, method, wait, extra={"member_id": self.member_id})
        self._sleep(wait)
        return wait

    # -- lists ------------------------------------------------------------------------------------
    def list_all(self, method: str, params: Mapping[str, Any] | None = None, *, id_field: str | None = None,
                 items_key: str | None = None, max_pages_per_call: int = BATCH_SIZE) -> Iterator[dict]:
        """Every record of a list method, in ascending id order, by keyset paging.

        Uses the fast export technique (PROTOCOL.md §4.4): order by id, filter ``>ID`` = last id seen,
        ``start=-1``; several pages per batch request chained with ``$result[...]`` references (1, 2, 4, ...
        up to 50 pages per request, so short lists cost one small request). Any `order`/`start` in
        `params` is replaced; `select` gets the id field added. `id_field`/`items_key` default by method
        (``crm.item.list``: ``id`` under ``items``; others: ``ID``, a plain list).

        Never a silently short list: a page that fails, is over-long, or whose ids do not ascend raises
        IncompleteListError (after the records before it were yielded). RateLimited and AuthLost
        propagate as themselves (in jobs, rate-limited pages are first retried from the last good id).
        """
        spec_id, spec_items, how = KEYSET.get(method.lower(), KEYSET_DEFAULT)
        id_field, items_key = id_field or spec_id, items_key if items_key is not None else spec_items
        base = _keyset_params(params or {}, id_field, how)
        flt = base.pop("filter")
        last_id = flt.pop(f">{id_field}", None)
        ref_path = f"[{items_key}]" if items_key else ""
        pages, backoff_spent, read = 1, 0.0, 0
        while True:
            cmds = {}
            for k in range(pages):
                bound = last_id if k == 0 else f"$result[p{k - 1}]{ref_path}[{PAGE_SIZE - 1}][{id_field}]"
                f = dict(flt)
                if bound is not None:
                    f[f">{id_field}"] = bound
                cmds[f"p{k}"] = (method, {**base, "filter": f} if f else base)  # an empty filter encodes badly
            try:
                out = self.batch_raw(cmds, halt=True)
            except (RateLimited, AuthLost):
                raise
            except BitrixError as exc:
                raise IncompleteListError(exc.code, f"list {method} failed after {read} records: {exc.description}",
                                          exc.status, method=method) from exc
            for k in range(pages):
                key = f"p{k}"
                if key in out.errors:
                    err = out.errors[key]
                    code = str(err.get("error", ""))
                    if code.upper() in RATE_CODES and not self.interactive and backoff_spent < JOB_MAX_BACKOFF:
                        backoff_spent += self.pause(code, method)
                        break  # resume from last_id
                    if code.upper() in RATE_CODES:
                        raise RateLimited(code, str(err.get("error_description", "")), retry_after=self._retry_after(code, method),
                                          method=method)
                    raise IncompleteListError(code, f"page {k} of {method} failed after {read} records: "
                                              f"{err.get('error_description', '')}", method=method)
                if key not in out.result:
                    raise IncompleteListError("PAGE_MISSING", f"page {k} of {method} missing from the batch answer "
                                              f"after {read} records", method=method)
                page = out.result[key]
                rows = page.get(items_key) if items_key and isinstance(page, dict) else page
                if not isinstance(rows, list) or len(rows) > PAGE_SIZE:
                    raise IncompleteListError("PAGE_MALFORMED", f"page {k} of {method} is not a list of at most "
                                              f"{PAGE_SIZE} records", method=method)
                for row in rows:
                    rid = _int_id(row, id_field)
                    if rid is None or (last_id is not None and rid <= int(last_id)):
                        raise IncompleteListError("PAGE_INCONSISTENT", f"{method}: ids do not ascend after "
                                                  f"{last_id} (got {rid})", method=method)
                    last_id = rid
                    read += 1
                    yield row
                if len(rows) < PAGE_SIZE:
                    return
            else:
                pages = min(pages * 2, max_pages_per_call, BATCH_SIZE)

    # -- the request path -------------------------------------------------------------------------
    def _with_backoff(self, method: str, fn: Callable[[], dict]) -> dict:
        spent, attempt = 0.0, 0
        while True:
            self.limiter.acquire(max_wait=WEB_MAX_WAIT if self.interactive else None)
            try:
                return fn()
            except RateLimited as exc:
                if exc.code.upper() == "QUERY_LIMIT_EXCEEDED":
                    if not self.limiter.limits.enabled:
                        # a portal recorded as unlimited has a limit after all: pace like a standard plan
                        log.warning("portal recorded as plan 'unlimited' answered QUERY_LIMIT_EXCEEDED; "
                                    "using the standard plan's limits (set the plan with `flask portal plan`)",
                                    extra={"member_id": self.member_id})
                        self.limiter = ratelimit.limiter_for(self._redis, self.member_id, "standard")
                    self.limiter.fill()  # someone else spends this portal's budget: everyone slows down
                wait = exc.retry_after if exc.code.upper() != "QUERY_LIMIT_EXCEEDED" else min(2.0 ** attempt, 30.0)
                if self.interactive or spent + wait > JOB_MAX_BACKOFF:
                    exc.retry_after = wait
                    raise
                log.info("%s rate-limited on %s; backing off %.1fs", exc.code, method, wait,
                         extra={"member_id": self.member_id})
                self._sleep(wait)
                spent += wait
                attempt += 1

    def _send(self, method: str, params: dict) -> dict:
        """One request through the SDK, with the domain, refresh and error handling around it."""
        auth_retried = False
        for _hop in range(3):
            try:
                env = self.token.call_method(api_method=method, params=params, timeout=REQUEST_TIMEOUT,
                                              max_retries=1)
                self._note_operating(method, env)
                return env
            except sdk_errors.BitrixResponse302JSONDecodeError as exc:
                new = urlparse(exc.redirect_url or "").netloc
                if not new or new == self.token.domain:
                    raise TransportError("BAD_REDIRECT", "the portal redirected to itself", 302, method=method) from None
                tokens.update_domain(self.portal_id, new)
                self.token.domain = self.domain = new
                if isinstance(self.token, _DbToken):
                    self.token.token_set = tokens.load(self.portal_id)
                continue
            except sdk_errors.BitrixAPIError as exc:
                err = _mapped(exc, method, self)
                if isinstance(err, (TokenExpired, AuthError)) and not isinstance(err, AuthLost) \
                        and str(err.code).upper() in AUTH_RETRY_CODES:
                    if self.is_webhook or auth_retried or isinstance(err, TokenExpired):
                        # the SDK already refreshed once and retried (or it is a webhook): still failing
                        raise tokens.mark_needs_reinstall(self.portal_id, err.code or "AUTH_FAILED",
                                                          "authorisation still failing after a refresh") from None
                    self.token.refresh_and_set_oauth_token()
                    auth_retried = True
                    continue
                raise err from None
            except sdk_errors.BitrixRequestError as exc:
                raise TransportError("TRANSPORT", f"{type(exc).__name__} talking to {self.token.domain}",
                                     method=method) from None
            except sdk_errors.BitrixResponseJSONDecodeError as exc:
                raise TransportError("BAD_ANSWER", "the portal answered something that is not Bitrix24 JSON",
                                     exc.response.status_code, method=method) from None
        raise TransportError("TOO_MANY_REDIRECTS", "the portal keeps redirecting", 302, method=method)

    def _note_operating(self, method: str, env: Mapping[str, Any]) -> None:
        t = env.get("time") if isinstance(env, Mapping) else None
        if isinstance(t, Mapping) and t.get("operating_reset_at") and float(t.get("operating") or 0) > 0:
            reset = int(t["operating_reset_at"])
            ttl = max(1, reset - int(time.time()))
            self._redis.set(f"{OPERATING_KEY}{self.member_id}:{method.lower()}", reset, ex=min(ttl, 900))

    def _retry_after(self, code: str, method: str) -> float:
        """Seconds to wait after a rate-limit error: `operating_reset_at` for 429, a short pause for 503."""
        if code.upper() == "OPERATION_TIME_LIMIT":
            raw = self._redis.get(f"{OPERATING_KEY}{self.member_id}:{method.lower()}")
            if raw is not None:
                return max(1.0, float(raw) - time.time())
            return 60.0
        if code.upper() == "OVERLOAD_LIMIT":
            return 60.0
        return 1.0


def _mapped(exc: sdk_errors.BitrixAPIError, method: str, client: PortalClient) -> BitrixError:
    """Translate a b24pysdk API error into the app's exception tree."""
    code = str(exc.error or "")
    desc = str(exc.error_description or "")
    status = exc.status_code
    up = code.upper()
    if up in RATE_CODES:
        return RateLimited(code, desc, status, retry_after=client._retry_after(code, method), method=method)
    if up in LOST_CODES:
        return tokens.mark_needs_reinstall(client.portal_id, code, desc or code)
    if up == "EXPIRED_TOKEN":
        return TokenExpired(code, desc, status, method=method)
    if up == "INSUFFICIENT_SCOPE":
        return ScopeMissing(code, desc, status, method=method)
    if status == 401 or up in AUTH_RETRY_CODES or up in {"INVALID_CREDENTIALS", "USER_ACCESS_ERROR"}:
        return AuthError(code, desc, status, method=method)
    if status and status >= 500:
        return TransportError(code, desc, status, method=method)
    return MethodError(code, desc, status, method=method)


def _keyset_params(params: Mapping[str, Any], id_field: str, how: str) -> dict:
    out = copy.deepcopy(dict(params))
    for k in list(out):
        if k.lower() in ("start", "order", "sort") or (how == "sort" and k.lower() == "order"):
            out.pop(k)
    fkey = next((k for k in out if k.lower() == "filter"), None)
    flt = dict(out.pop(fkey) or {}) if fkey else {}
    skey = next((k for k in out if k.lower() == "select"), None)
    if skey and isinstance(out[skey], list) and out[skey] and "*" not in out[skey] and id_field not in out[skey]:
        out[skey] = [*out[skey], id_field]
    if how == "sort":
        out.update(sort=id_field, order="ASC")
    else:
        out["order"] = {id_field: "ASC"}
    out["start"] = -1
    out["filter"] = flt
    return out


def _int_id(row: Any, id_field: str) -> int | None:
    try:
        return int(row[id_field])
    except (KeyError, TypeError, ValueError):
        return None


def client_for(portal_id: int, *, interactive: bool | None = None) -> PortalClient:
    """The gateway to portal `portal_id` (an id, never an ORM object: jobs pass ids).

    `interactive` (default: inside a Flask request) makes rate limits raise RateLimited instead of
    sleeping. Raises AuthLost for an unknown, uninstalled or needs_reinstall portal (no request is
    made), AuthError for an OAuth portal without stored tokens.
    """
    portal = db_session().get(Portal, portal_id)
    if portal is None:
        raise AuthLost("PORTAL_NOT_FOUND", f"portal {portal_id} is not known to Hub24")
    db_session().refresh(portal)
    if portal.connection_kind == ConnectionKind.webhook:
        tokens._check_usable(portal, portal_id)
        if not portal.webhook_url:
            raise AuthError("NO_WEBHOOK", f"portal {portal_id} has no webhook URL")
        return PortalClient(portal, None, interactive=interactive)
    return PortalClient(portal, tokens.load(portal_id), interactive=interactive)
