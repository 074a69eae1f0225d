"""REST method registry: every portal method is a function registered with `@method`.

A handler gets a `Call` (portal, caller identity, parameters already decoded into plain Python data)
and returns the `result` value, or a `Page` for list methods (the dispatcher adds `total`/`next`).
It raises `sandbox.errors.RestError` for failures. The dispatcher (`sandbox.rest`) owns auth, scopes,
limits, the envelope and the `time` block; handlers never build HTTP responses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .core import PortalState


@dataclass
class Caller:
    """Who is calling: an app installation (OAuth token) or an incoming webhook."""

    user_id: int
    scopes: list[str]
    client_id: str | None = None  # set for OAuth app calls
    webhook_code: str | None = None  # set for webhook calls
    is_admin: bool = False

    @property
    def is_app(self) -> bool:
        return self.client_id is not None

    @property
    def budget_key(self) -> str:
        """Key of the operating-time budget (per method × app or webhook, PROTOCOL.md §4.2)."""
        return f"app:{self.client_id}" if self.client_id else f"hook:{self.user_id}:{self.webhook_code}"


@dataclass
class Call:
    portal: PortalState
    caller: Caller
    params: dict[str, Any]
    method: str
    in_batch: bool = False
    cost: float | None = None  # server seconds, set by handlers that know better than the default

    def param(self, name: str, default: Any = None) -> Any:
        """Case-insensitive parameter lookup (PROTOCOL.md §3.2: docs mix `filter` and `FILTER`)."""
        if name in self.params:
            return self.params[name]
        low = name.lower()
        for k, v in self.params.items():
            if k.lower() == low:
                return v
        return default


@dataclass
class Page:
    """A list method's answer: the items of this page plus paging facts."""

    items: Any
    total: int | None  # None when start=-1 (no count): the envelope then shows total 0 and no next
    next: int | None = None


@dataclass
class MethodSpec:
    name: str
    fn: Callable[[Call], Any]
    scope: str | None  # None: any scope (basic methods)
    app_only: bool = False  # events, placements, robots: not with webhooks
    admin_only: bool = False
    cost: Callable[[Call, Any], float] | None = None  # server seconds this call costs (cost model)
    extra: dict = field(default_factory=dict)


METHODS: dict[str, MethodSpec] = {}


def method(name: str, scope: str | None = None, *, app_only: bool = False, admin_only: bool = False,
           cost: Callable[[Call, Any], float] | None = None) -> Callable:
    """Register a REST method under its lower-case name."""

    def deco(fn: Callable[[Call], Any]) -> Callable[[Call], Any]:
        METHODS[name.lower()] = MethodSpec(name.lower(), fn, scope, app_only, admin_only, cost)
        return fn

    return deco


def lookup(name: str) -> MethodSpec | None:
    return METHODS.get(name.lower())
