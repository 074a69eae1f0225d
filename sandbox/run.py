"""Starting a sandbox: portals on their own ports, in-process handles for tests and the CLI.

`create_portal()` is the one place a portal is born (domain, member_id, CRM, limiter, seeded data,
and the hooks other modules register, e.g. S2's lifecycle). `start_sandbox()` serves the main port
(OAuth server, admin API and the first portal) in a thread and returns a `SandboxHandle`.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Callable

from . import crm, data, limits
from .core import PortalState, Sandbox, SandboxConfig
from .server import ServerThread, create_wsgi_app

PORTAL_HOOKS: list[Callable[[PortalState], None]] = []  # called for every new portal


def create_portal(sandbox: Sandbox, domain: str, data_size: int | None = None, seed: int | None = None,
                  plan: str = "standard", member_id: str | None = None) -> PortalState:
    """Create, seed and register a portal answering on ``domain`` (host:port)."""
    portal = PortalState(sandbox, member_id or secrets.token_hex(16), domain, plan)
    crm.attach(portal)
    limits.attach(portal)
    cfg = sandbox.config
    data.seed_portal(portal, cfg.data_size if data_size is None else data_size, cfg.seed if seed is None else seed)
    with sandbox.lock:
        sandbox.portals[portal.member_id] = portal
    for hook in list(PORTAL_HOOKS):
        hook(portal)
    try:  # S2's portal-to-app callbacks subscribe to the portal bus, if that module is present
        from . import lifecycle  # type: ignore[attr-defined]
        if hasattr(lifecycle, "attach"):
            lifecycle.attach(portal)
    except ImportError:
        pass
    return portal


@dataclass
class SandboxHandle:
    """A running sandbox: its main server, extra portal servers and the state behind them."""

    sandbox: Sandbox
    app: object
    main: ServerThread
    portal: PortalState
    extra: list[ServerThread] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.sandbox.base_url

    def add_portal(self, data_size: int = 0, seed: int | None = None, plan: str = "standard") -> PortalState:
        """Serve one more portal on a fresh port of the same host."""
        srv = ServerThread(self.app, self.main.host, 0).start()
        self.extra.append(srv)
        return create_portal(self.sandbox, f"{self.main.host}:{srv.port}", data_size, seed, plan)

    def stop(self) -> None:
        for srv in [*self.extra, self.main]:
            srv.stop()


def start_sandbox(config: SandboxConfig | None = None, member_id: str | None = None) -> SandboxHandle:
    """Start a sandbox in this process (port 0 = a free port); the first portal is seeded.

    `member_id` fixes the first portal's identity (a demo that restarts keeps being the same portal).
    """
    cfg = config or SandboxConfig()
    sandbox = Sandbox(cfg)
    app = create_wsgi_app(sandbox)
    main = ServerThread(app, cfg.host, cfg.port).start()
    sandbox.base_url = f"http://{cfg.host}:{main.port}"
    portal = create_portal(sandbox, f"{cfg.host}:{main.port}", member_id=member_id)
    return SandboxHandle(sandbox, app, main, portal)
