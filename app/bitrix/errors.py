"""The Bitrix24 exception tree.

    BitrixError                    any failure talking to a portal (code, description, HTTP status)
    ├── TransportError             network failure or an answer that is not Bitrix24 JSON
    ├── RateLimited                503 QUERY_LIMIT_EXCEEDED / 429 OPERATION_TIME_LIMIT (retry after `retry_after`)
    ├── AuthError                  401/403 about authorisation
    │   ├── TokenExpired           expired_token (refreshable)
    │   └── AuthLost               the portal must be reinstalled: invalid_grant, PORTAL_DELETED,
    │                              PAYMENT_REQUIRED, auth still failing after refresh, app uninstalled
    ├── ScopeMissing               insufficient_scope (403): the app lacks a scope in this portal
    ├── MethodError                the method answered an error (bad params, not found, access denied)
    │   └── BatchCommandError      one command of a batch failed (`key` names it)
    ├── IncompleteListError        a page of a list failed or came back inconsistent: never a short list
    └── NotAvailableForWebhook     events, robots and placements need an installed app

Callers catch `RateLimited` to back off, `AuthLost` to pause a portal, `BitrixError` for everything else.
"""
from __future__ import annotations


class BitrixError(Exception):
    """A failure talking to a portal. `code` is Bitrix24's `error` (may be ""), `status` the HTTP status."""

    def __init__(self, code: str = "", description: str = "", status: int | None = None, *, method: str | None = None):
        self.code = code
        self.description = description
        self.status = status
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{code or 'error'}{f' ({status})' if status else ''}: {description}".strip())


class TransportError(BitrixError):
    """The portal could not be reached, or answered something that is not a Bitrix24 envelope."""


RATE_CODES = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT"})


class RateLimited(BitrixError):
    """QUERY_LIMIT_EXCEEDED (503) or OPERATION_TIME_LIMIT (429); `retry_after` seconds is a safe wait."""

    def __init__(self, *args, retry_after: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class AuthError(BitrixError):
    """Authorisation failed."""


class TokenExpired(AuthError):
    """expired_token: refresh and retry."""


class AuthLost(AuthError):
    """The portal's authorisation is gone for good; it needs reinstalling. Jobs for it stop."""


class ScopeMissing(BitrixError):
    """insufficient_scope: the app was installed without a scope this call needs."""


class MethodError(BitrixError):
    """The method itself answered with an error."""


class BatchCommandError(MethodError):
    """One command of a batch failed; `key` is its name in the batch."""

    def __init__(self, key: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = key


class IncompleteListError(BitrixError):
    """A list could not be read completely; partial results are never returned silently."""


class NotAvailableForWebhook(BitrixError):
    """Events, robots and placements need an installed app; this portal is connected by a webhook."""
