"""Registering, installing, finishing, updating and uninstalling apps; opening their frames.

Install as an administrator would (PROTOCOL.md §1): an app with an install page gets the install frame
POST and stays "not finished" until `finish_install` (the JS `installFinish`); an app without UI gets
`ONAPPINSTALL` from the queue and is finished at once. Uninstall sends `ONAPPUNINSTALL` (no tokens) to
the app's bound handlers, removes what the app registered and kills every token.
"""
from __future__ import annotations

import random
import secrets
import time
from typing import Any

from ..core import AppRegistration, PortalState, Sandbox
from ..errors import RestError
from .auth import auth_block, frame_fields
from .delivery import Delivery, deliverer, post_frame
from .model import Callbacks, Installation, new_application_token


class LifecycleError(RestError):
    """A refused admin action (unknown app, not installed...), answered as HTTP 400 by the admin API."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(status, code, description)


def callbacks(portal: PortalState) -> Callbacks:
    """The portal's portal-to-app state, attaching the event subscriptions on first use."""
    cb = getattr(portal, "callbacks", None)
    if cb is None:
        with portal.lock:
            cb = getattr(portal, "callbacks", None)
            if cb is None:
                from . import events  # late: events imports this module

                seed = f"{portal.sandbox.config.seed}:{portal.member_id}"
                cb = portal.callbacks = Callbacks(portal, rng=random.Random(seed))
                portal.bus.subscribe("crm.changed", events.make_crm_listener(portal))
                portal.bus.subscribe("user.added", events.make_user_listener(portal))
    return cb


def attach(portal: PortalState) -> None:
    """Wire a new portal to the lifecycle code (idempotent). Call when creating a portal."""
    callbacks(portal)


def register_app(sandbox: Sandbox, *, name: str = "App", handler_url: str = "", install_url: str = "",
                 scopes: list[str] | None = None, client_id: str | None = None,
                 client_secret: str | None = None, version: int = 1) -> AppRegistration:
    """Register a local app with the OAuth server; returns its registration (client id and secret).

    Raises `LifecycleError` when `client_id` is already taken.
    """
    cid = client_id or f"local.{secrets.token_hex(7)[:13]}.{random.randint(10**7, 10**8 - 1)}"
    with sandbox.lock:
        if cid in sandbox.apps:
            raise LifecycleError("APP_EXISTS", f"Application {cid} is already registered")
        app = AppRegistration(client_id=cid, client_secret=client_secret or secrets.token_urlsafe(36)[:50],
                              name=name, handler_url=handler_url, install_url=install_url,
                              scopes=list(scopes or ["crm"]), version=version)
        sandbox.apps[cid] = app
    return app


def get_app(sandbox: Sandbox, client_id: str) -> AppRegistration:
    app = sandbox.apps.get(client_id)
    if app is None:
        raise LifecycleError("APP_NOT_FOUND", f"Application {client_id} is not registered", 404)
    return app


def installation(portal: PortalState, client_id: str) -> Installation:
    """The active installation of `client_id`; raises `LifecycleError` when the app is not installed."""
    inst = portal.installations.get(client_id)
    if inst is None or inst.uninstalled:
        raise LifecycleError("NOT_INSTALLED", f"Application {client_id} is not installed on {portal.domain}")
    return inst


def install(portal: PortalState, client_id: str, *, user_id: int = 1, mode: str | None = None,
            language_id: str = "en", status: str = "") -> dict[str, Any]:
    """Install `client_id` on `portal` as administrator `user_id`.

    `mode` "frame" POSTs the install page (the app's `install_url`) and leaves the installation
    unfinished until `finish_install`; "event" queues `ONAPPINSTALL` to the install URL (or the app URL)
    and finishes at once. Default: "frame" when the app has an install page, else "event".
    Returns ``{"installation": ..., "delivery": ...}``. Raises `LifecycleError` if already installed.
    """
    sandbox = portal.sandbox
    app = get_app(sandbox, client_id)
    mode = mode or ("frame" if app.install_url else "event")
    if mode not in ("frame", "event"):
        raise LifecycleError("INVALID_MODE", "mode must be frame or event")
    callbacks(portal)
    with sandbox.lock:
        old = portal.installations.get(client_id)
        if old is not None and not old.uninstalled:
            raise LifecycleError("ALREADY_INSTALLED", f"Application {client_id} is already installed")
        inst = Installation(portal=portal, app=app, application_token=new_application_token(),
                            scopes=list(app.scopes), version=app.version, installed=(mode == "event"),
                            status=status, language_id=language_id, installed_by=user_id)
        portal.installations[client_id] = inst
    if mode == "frame":
        query, body = frame_fields(inst, user_id, "DEFAULT", lang=language_id)
        d = post_frame(portal.member_id, client_id, app.install_url, query, body, kind="install",
                       record=deliverer(sandbox))
    else:
        target = app.install_url or app.handler_url
        payload = {"event": "ONAPPINSTALL",
                   "data": {"VERSION": str(app.version), "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": language_id},
                   "ts": str(int(time.time())), "auth": auth_block(inst, user_id)}
        d = deliverer(sandbox).submit(Delivery(0, portal.member_id, client_id, "install", "ONAPPINSTALL",
                                               target, payload))
    return {"installation": inst, "delivery": d}


def finish_install(portal: PortalState, client_id: str) -> Installation:
    """Mark the installation finished (what `BX24.installFinish()` does); events flow from now on."""
    inst = installation(portal, client_id)
    inst.installed = True
    return inst


def _handlers_of(inst: Installation, event: str):
    return [h for h in inst.handlers if h.event == event and not h.offline]


def update(portal: PortalState, client_id: str, *, version: int | None = None, user_id: int = 1) -> list[Delivery]:
    """Install a new version: new `application_token`, `ONAPPUPDATE` to the app's bound handlers."""
    inst = installation(portal, client_id)
    with portal.lock:
        previous = inst.version
        inst.version = version if version is not None else previous + 1
        inst.app.version = inst.version
        inst.application_token = new_application_token()
        targets = _handlers_of(inst, "ONAPPUPDATE")
    out = []
    for h in targets:
        payload = {"event": "ONAPPUPDATE", "event_handler_id": str(h.id),
                   "data": {"VERSION": str(inst.version), "PREVIOUS_VERSION": str(previous),
                            "LANGUAGE_ID": inst.language_id},
                   "ts": str(int(time.time())), "auth": auth_block(inst, h.auth_type or user_id)}
        out.append(deliverer(portal.sandbox).submit(
            Delivery(0, portal.member_id, client_id, "update", "ONAPPUPDATE", h.handler, payload)))
    return out


def uninstall(portal: PortalState, client_id: str, *, clean: bool = True) -> list[Delivery]:
    """Uninstall: `ONAPPUNINSTALL` with `data[CLEAN]` and no tokens; every token of the app dies."""
    sandbox = portal.sandbox
    inst = installation(portal, client_id)
    with sandbox.lock:
        targets = _handlers_of(inst, "ONAPPUNINSTALL")
        payloads = [(h, {"event": "ONAPPUNINSTALL", "event_handler_id": str(h.id),
                         "data": {"LANGUAGE_ID": inst.language_id, "CLEAN": "1" if clean else "0"},
                         "ts": str(int(time.time())), "auth": auth_block(inst, None, tokens=False)})
                    for h in targets]
        inst.uninstalled = True
        inst.installed = False
        inst.handlers.clear()
        inst.placements.clear()
        inst.robots.clear()
        inst.offline_events.clear()
        inst.user_tokens.clear()
        if clean or client_id.startswith("local."):
            inst.options.clear()
        del portal.installations[client_id]
        sandbox.revoke_app_tokens(portal.member_id, client_id)
    return [deliverer(sandbox).submit(Delivery(0, portal.member_id, client_id, "uninstall", "ONAPPUNINSTALL",
                                               h.handler, p)) for h, p in payloads]


def open_frame(portal: PortalState, client_id: str, *, placement: str = "DEFAULT", options: Any = None,
               user_id: int = 1, handler: str | None = None, lang: str | None = None) -> Delivery:
    """Open the app page (`DEFAULT`) or a bound placement as user `user_id` would: a synchronous frame POST.

    While installation is unfinished the app page shows the install page again, and placements are
    hidden (`LifecycleError` PLACEMENT_NOT_FOUND), as in Bitrix24 (PROTOCOL.md §1.5).
    """
    inst = installation(portal, client_id)
    if placement == "DEFAULT":
        url = handler or (inst.app.handler_url if inst.installed else (inst.app.install_url or inst.app.handler_url))
    else:
        bindings = [b for b in inst.placements if b.placement == placement and (handler is None or b.handler == handler)]
        if not bindings or not inst.installed:
            raise LifecycleError("PLACEMENT_NOT_FOUND", f"No handler is shown for placement {placement}", 404)
        url = bindings[0].handler
        if options is None:
            options = {}
    if not url:
        raise LifecycleError("NO_HANDLER", "The application has no page URL")
    query, body = frame_fields(inst, user_id, placement, options, lang)
    return post_frame(portal.member_id, client_id, url, query, body, kind="frame", record=deliverer(portal.sandbox))
