"""The sandbox's state: one OAuth server, many portals, registered apps and their tokens.

Everything lives in memory behind one re-entrant lock (`Sandbox.lock`); request handlers and the
Python API take it around every read-modify-write. Module ownership (see README.md):

* this module: containers and the token store shared by the OAuth server and the REST dispatcher;
* `sandbox.rest` / `sandbox.crm` / `sandbox.data` / `sandbox.limits`: the portal REST API;
* `sandbox.oauth` / `sandbox.lifecycle` / `sandbox.admin` / `sandbox.client`: OAuth server,
  portal-to-app callbacks (install, events, robots, placements), admin API and Python API.

Cross-module notifications go through `PortalState.bus` (a tiny synchronous pub/sub) so the CRM store
never imports the event delivery code: CRM code publishes ``crm.changed``; lifecycle code subscribes.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

PLAN_LIMITS = {
    # plan: (drain per second, block threshold) — PROTOCOL.md §4.1
    "standard": (2.0, 50),
    "enterprise": (5.0, 250),
}


@dataclass
class SandboxConfig:
    """Settings of one sandbox process (the CLI flags of `python -m sandbox`)."""

    host: str = "127.0.0.1"
    port: int = 0
    limits: str = "standard"  # standard | enterprise | off
    latency_ms: float = 0.0
    seed: int = 1
    data_size: int = 0
    access_token_lifetime: int = 3600  # seconds; Bitrix24 issues one-hour access tokens
    refresh_token_lifetime: int = 180 * 24 * 3600
    operating_limit: float = 480.0  # seconds of method time per 10 minutes (PROTOCOL.md §4.2)
    cost_sleep: float = 0.0  # share of each call's modelled server time actually slept (1.0 = like a real server)


class Bus:
    """Synchronous in-process pub/sub between sandbox modules."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def subscribe(self, topic: str, fn: Callable[..., Any]) -> None:
        self._subs[topic].append(fn)

    def publish(self, topic: str, **payload: Any) -> None:
        for fn in list(self._subs.get(topic, ())):
            fn(**payload)


@dataclass
class AppRegistration:
    """A local or marketplace app registered with the OAuth server."""

    client_id: str
    client_secret: str
    name: str = "App"
    handler_url: str = ""  # the app page (POST /)
    install_url: str = ""  # the install page, or empty for ONAPPINSTALL-only apps
    scopes: list[str] = field(default_factory=list)
    version: int = 1


@dataclass
class AccessToken:
    token: str
    member_id: str
    client_id: str | None  # None for tokens of webhooks (never issued as OAuth tokens)
    user_id: int
    scopes: list[str]
    expires_at: float

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class RefreshToken:
    token: str
    member_id: str
    client_id: str
    user_id: int
    scopes: list[str]
    expires_at: float
    used: bool = False


@dataclass
class Webhook:
    """An incoming webhook: /rest/<user_id>/<code>/<method>."""

    user_id: int
    code: str
    scopes: list[str]


class PortalState:
    """One Bitrix24 portal: its CRM, users, installed apps, webhooks, limits and event bus.

    Attributes set by other modules (the CRM store `crm`, the limiter `limiter`, installations
    `installations`) are created by those modules' `attach(portal)` functions.
    """

    def __init__(self, sandbox: "Sandbox", member_id: str, domain: str, plan: str = "standard"):
        self.sandbox = sandbox
        self.member_id = member_id
        self.domain = domain  # host:port the portal answers on
        self.old_domains: list[str] = []  # answer 302 to the current domain (PROTOCOL.md §3.1)
        self.plan = plan
        self.bus = Bus()
        self.webhooks: dict[tuple[int, str], Webhook] = {}
        self.installations: dict[str, Any] = {}  # client_id -> lifecycle.Installation
        self.crm: Any = None
        self.limiter: Any = None
        self.deleted = False  # PORTAL_DELETED
        self.payment_required = False  # PAYMENT_REQUIRED

    @property
    def lock(self) -> threading.RLock:
        return self.sandbox.lock

    @property
    def client_endpoint(self) -> str:
        return f"http://{self.domain}/rest/"

    def add_webhook(self, user_id: int, scopes: list[str], code: str | None = None) -> Webhook:
        hook = Webhook(user_id=user_id, code=code or secrets.token_hex(8), scopes=list(scopes))
        self.webhooks[(user_id, hook.code)] = hook
        return hook

    def webhook_url(self, hook: Webhook) -> str:
        return f"http://{self.domain}/rest/{hook.user_id}/{hook.code}/"


class Sandbox:
    """The whole sandbox: OAuth server, app registry, token store and the portals it hosts."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.portals: dict[str, PortalState] = {}  # member_id -> portal
        self.apps: dict[str, AppRegistration] = {}  # client_id -> app
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.base_url = ""  # http://host:port of the main server, set when serving

    # -- portals -------------------------------------------------------------------------
    def portal_by_domain(self, domain: str) -> PortalState | None:
        for p in self.portals.values():
            if p.domain == domain:
                return p
        return None

    def portal_by_old_domain(self, domain: str) -> PortalState | None:
        for p in self.portals.values():
            if domain in p.old_domains:
                return p
        return None

    # -- tokens --------------------------------------------------------------------------
    def issue_tokens(self, portal: PortalState, client_id: str, user_id: int, scopes: list[str]) -> tuple[AccessToken, RefreshToken]:
        """Mint a fresh access/refresh pair for an app installation."""
        now = time.time()
        with self.lock:
            access = AccessToken(secrets.token_hex(24), portal.member_id, client_id, user_id, list(scopes),
                                 now + self.config.access_token_lifetime)
            refresh = RefreshToken(secrets.token_hex(24), portal.member_id, client_id, user_id, list(scopes),
                                   now + self.config.refresh_token_lifetime)
            self.access_tokens[access.token] = access
            self.refresh_tokens[refresh.token] = refresh
        return access, refresh

    def revoke_app_tokens(self, member_id: str, client_id: str) -> None:
        """Kill every token of an app on a portal (uninstall)."""
        with self.lock:
            for store in (self.access_tokens, self.refresh_tokens):
                for key in [k for k, t in store.items() if t.member_id == member_id and t.client_id == client_id]:
                    del store[key]

    def expire_access_tokens(self, member_id: str | None = None) -> int:
        """Make access tokens expire now (tests of refresh behaviour). Returns how many."""
        n = 0
        with self.lock:
            for t in self.access_tokens.values():
                if member_id is None or t.member_id == member_id:
                    t.expires_at = time.time() - 1
                    n += 1
        return n
