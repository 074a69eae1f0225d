"""Reusable fixtures: Hub24 against an in-process sandbox (registered in tests/conftest.py via pytest_plugins).

Names are stable; other suites rely on them.

* ``b24_sandbox`` (session) — a `SandboxHandle` serving on a free loopback port, limits off, seeded CRM
  (`B24_SANDBOX_DATA_SIZE` records per entity), with a request log on its WSGI app (`b24_sandbox.log`,
  a `SandboxLog`: every OAuth token grant and REST request with status and error code).
* ``b24_registration`` (session) — Hub24 registered as a local app in ``b24_sandbox``:
  ``{"client_id", "client_secret", "scopes"}`` (scopes from manifest.json).
* ``b24_settings`` — the settings that point Hub24 at ``b24_sandbox`` (string values, usable as
  environment for subprocesses too): DATABASE_URL, REDIS_URL, SECRET_KEY, TOKEN_ENCRYPTION_KEY,
  B24_OAUTH_URL, B24_ALLOW_HTTP, B24_CLIENT_ID, B24_CLIENT_SECRET.
* ``b24_app`` — like ``app`` (transaction rolled back after the test, Redis flushed, app context pushed),
  configured with ``b24_settings``. ``b24_db`` is its session, ``b24_client`` its test client.
* ``installed_portal`` — factory ``installed_portal(plan="standard", data_size=0, commit=False,
  webhook=False, handle=None, registration=None) -> Portal``: creates a new portal in the sandbox (its
  own port), installs Hub24 there (ONAPPINSTALL mode), obtains real tokens from the sandbox OAuth server
  (authorization code grant), and stores an active `Portal` with its `PortalToken`. The returned Portal
  has ``.sandbox`` (the `sandbox.Portal` Python API for that portal) and ``.state`` (its in-process
  `PortalState`). ``commit=True`` commits the rows (for subprocesses) and deletes them afterwards;
  ``webhook=True`` stores a webhook-connected portal instead.
* ``make_b24_sandbox`` — factory ``make_b24_sandbox(**SandboxConfig fields) -> SandboxHandle`` for a
  dedicated sandbox (e.g. ``limits="standard"``), with Hub24 registered (``handle.registration``) and a
  request log (``handle.log``); stopped after the test.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy.orm import Session

from app import create_app
from sandbox import oauth as sandbox_oauth
from sandbox.client import Portal as SandboxPortal
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox

B24_SANDBOX_DATA_SIZE = 120
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.json"


@dataclass
class SandboxLog:
    """What reached the sandbox over HTTP, recorded by a WSGI middleware in the sandbox's process."""

    entries: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **entry) -> None:
        with self.lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def select(self, kind: str | None = None, host: str | None = None) -> list[dict]:
        with self.lock:
            return [e for e in self.entries if (kind is None or e["kind"] == kind)
                    and (host is None or e["host"] == host)]

    def refresh_grants(self) -> list[dict]:
        """Token-endpoint requests with grant_type=refresh_token (each spends one refresh token)."""
        return [e for e in self.select("oauth") if e.get("grant_type") == "refresh_token"]


class _Recorder:
    """WSGI middleware: records each OAuth token request and REST request with its outcome."""

    def __init__(self, wsgi_app, log: SandboxLog):
        self.wsgi_app, self.log = wsgi_app, log

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        kind = "oauth" if path.rstrip("/").endswith("/oauth/token") else "rest" if path.startswith("/rest/") else None
        if kind is None:
            return self.wsgi_app(environ, start_response)
        grant = parse_qs(environ.get("QUERY_STRING", "")).get("grant_type", [None])[0]
        seen: dict = {}

        def _start(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        t0 = time.monotonic()
        body = b"".join(self.wsgi_app(environ, _start))
        error = None
        if seen.get("status", 200) >= 400 or b'"error"' in body[:200]:
            try:
                error = json.loads(body).get("error")
            except (ValueError, AttributeError):
                error = None
        self.log.add(kind=kind, path=path, host=environ.get("HTTP_HOST", ""), status=seen.get("status"),
                     error=error, grant_type=grant, at=t0)
        return [body]


def _record(handle) -> SandboxLog:
    log = SandboxLog()
    handle.app.wsgi_app = _Recorder(handle.app.wsgi_app, log)
    handle.log = log
    return log


def _manifest_scopes() -> list[str]:
    try:
        scopes = list(json.loads(MANIFEST.read_text())["scopes"])
    except (OSError, ValueError, KeyError):
        scopes = ["crm", "user", "department", "placement", "bizproc"]
    return sorted(set(scopes) | {"basic"})


def _register(handle) -> dict:
    api = SandboxPortal(handle.sandbox)
    reg = api.register_app(name="Hub24", scopes=_manifest_scopes())
    handle.registration = {"client_id": reg["client_id"], "client_secret": reg["client_secret"],
                           "scopes": reg["scopes"]}
    return handle.registration


@pytest.fixture(scope="session")
def b24_sandbox():
    handle = start_sandbox(SandboxConfig(data_size=B24_SANDBOX_DATA_SIZE, limits="off", seed=11))
    _record(handle)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def b24_registration(b24_sandbox) -> dict:
    return _register(b24_sandbox)


@pytest.fixture()
def make_b24_sandbox():
    handles = []

    def make(**config):
        handle = start_sandbox(SandboxConfig(**{"seed": 5, **config}))
        _record(handle)
        _register(handle)
        handles.append(handle)
        return handle

    yield make
    for h in handles:
        h.stop()


def settings_for(base: dict, handle, registration: dict) -> dict:
    """Settings (environment strings) that point Hub24 at `handle`'s sandbox, on top of `base`."""
    cfg = dict(base)
    cfg.update(B24_OAUTH_URL=sandbox_oauth.oauth_base_url(handle.sandbox), B24_ALLOW_HTTP="true",
               B24_CLIENT_ID=registration["client_id"], B24_CLIENT_SECRET=registration["client_secret"])
    return cfg


@pytest.fixture()
def b24_base_settings(make_app) -> dict:
    """The suite's base settings (test database, Redis, keys) as environment strings."""
    s = make_app().extensions["settings"]
    return {"DATABASE_URL": s.DATABASE_URL, "REDIS_URL": s.REDIS_URL, "SECRET_KEY": s.SECRET_KEY,
            "TOKEN_ENCRYPTION_KEY": ",".join(s.TOKEN_ENCRYPTION_KEY), "APP_BASE_URL": s.APP_BASE_URL,
            "LOG_LEVEL": s.LOG_LEVEL}


@pytest.fixture()
def b24_settings(b24_base_settings, b24_sandbox, b24_registration) -> dict:
    return settings_for(b24_base_settings, b24_sandbox, b24_registration)


@pytest.fixture()
def b24_app(engine, redis_conn, b24_settings):
    """The app pointed at the sandbox; session on one connection rolled back after the test."""
    from tests.conftest import rolled_back

    yield from rolled_back(create_app({**b24_settings, "ENGINE": engine, "REDIS": redis_conn}), engine)


@pytest.fixture()
def b24_db(b24_app):
    return b24_app.extensions["db.session"]()


@pytest.fixture()
def b24_client(b24_app):
    return b24_app.test_client()


def obtain_tokens(handle, state, registration: dict, user_id: int = 1) -> dict:
    """Real tokens from the sandbox OAuth server (authorization code grant over HTTP)."""
    api = SandboxPortal(handle.sandbox, state.member_id)
    code = api.authorize(registration["client_id"], user_id=user_id)["code"]
    resp = requests.get(sandbox_oauth.oauth_base_url(handle.sandbox) + "/oauth/token/", timeout=10,
                        params={"grant_type": "authorization_code", "client_id": registration["client_id"],
                                "client_secret": registration["client_secret"], "code": code})
    resp.raise_for_status()
    return resp.json()


def new_served_portal(handle, plan: str = "standard", data_size: int = 0):
    """A new sandbox portal answering on a port of its own."""
    return handle.add_portal(data_size=data_size, plan=plan)


@pytest.fixture()
def installed_portal(b24_app, b24_sandbox, b24_registration, engine):
    from app.bitrix import tokens
    from app.models.portal import ConnectionKind, Portal, PortalStatus, PortalToken

    committed: list[int] = []

    def make(plan: str = "standard", data_size: int = 0, commit: bool = False, webhook: bool = False,
             handle=None, registration=None):
        handle = handle or b24_sandbox
        registration = registration or getattr(handle, "registration", None) or b24_registration
        state = new_served_portal(handle, plan, data_size)
        api = SandboxPortal(handle.sandbox, state.member_id)
        portal = Portal(member_id=state.member_id, domain=state.domain, client_endpoint=state.client_endpoint,
                        server_endpoint=sandbox_oauth.server_endpoint(handle.sandbox), plan=plan,
                        status=PortalStatus.active)
        answer = None
        if webhook:
            hook = api.create_webhook(user_id=1, scopes=registration["scopes"])
            portal.connection_kind = ConnectionKind.webhook
            portal.webhook_url = hook["url"]
        else:
            inst = api.install(registration["client_id"], mode="event")["installation"]
            portal.application_token = inst["application_token"]
            portal.scopes = list(inst["scopes"])
            answer = obtain_tokens(handle, state, registration)
        session = Session(bind=engine, expire_on_commit=False) if commit else b24_app.extensions["db.session"]()
        session.add(portal)
        session.flush()
        if answer is not None:
            tokens.save(portal.id, answer, session=session)
            session.flush()
        session.commit()
        if commit:
            committed.append(portal.id)
            session.close()
            portal = b24_app.extensions["db.session"]().get(Portal, portal.id)
        portal.sandbox = api
        portal.state = state
        return portal

    yield make
    if committed:
        with Session(bind=engine) as s:
            for pid in committed:
                s.query(PortalToken).filter_by(portal_id=pid).delete()
                s.query(Portal).filter_by(id=pid).delete()
            s.commit()


# -- helpers for suites that mirror a sandbox portal reached by an incoming webhook ------------------

WEBHOOK_SCOPES = ["crm", "user", "department"]


def sandbox_settings(handle) -> dict:
    """The settings that let Hub24 talk to `handle` (plain http, its OAuth server)."""
    return {"B24_ALLOW_HTTP": "true", "B24_OAUTH_URL": handle.base_url + "/oauth"}


def webhook_portal(db, handle, scopes: list[str] | None = None):
    """Store (and commit in the test's transaction) an active Portal reaching `handle`'s first portal by webhook."""
    from app.models import ConnectionKind, Portal, PortalStatus

    scopes = scopes or WEBHOOK_SCOPES
    hook = handle.portal.add_webhook(1, scopes)
    p = Portal(member_id=handle.portal.member_id, domain=handle.portal.domain, status=PortalStatus.active,
               connection_kind=ConnectionKind.webhook, webhook_url=handle.portal.webhook_url(hook),
               client_endpoint=handle.portal.client_endpoint, scopes=list(scopes))
    db.add(p)
    db.commit()
    return p


class AppDispatch:
    """A WSGI callable for a test server started once: each test points `target` at its own app
    (503 until one is set)."""

    def __init__(self) -> None:
        self.target = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app yet"]
        return self.target(environ, start_response)
