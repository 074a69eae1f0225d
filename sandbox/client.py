"""`sandbox.Portal`: the Python API of the sandbox, for tests, demos and `make run`.

One class, two transports: give it a `Sandbox` and it drives that sandbox in-process (through the same
WSGI app, without sockets); give it a base URL (``http://127.0.0.1:8765``) and it drives a running
sandbox over HTTP. Every method maps to one admin operation (`sandbox.admin.OPS`) and returns the same
JSON-shaped data either way; failures raise `SandboxError`.

    portal = Portal(sandbox)                 # or Portal("http://127.0.0.1:8765")
    app = portal.register_app(handler_url=..., install_url=..., scopes=["crm", "placement"])
    portal.install(app["client_id"])         # install frame POST to install_url
    portal.finish_install(app["client_id"])
    tokens = portal.issue_tokens(app["client_id"])
    portal.call("event.bind", {"event": "ONCRMDEALADD", "handler": url}, auth=tokens["access_token"])
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

import requests

from .core import Sandbox


class SandboxError(Exception):
    """An admin operation or REST call failed: HTTP `status`, Bitrix24-style `code` and `description`."""

    def __init__(self, status: int, code: str, description: str = "", body: Any = None):
        super().__init__(f"{status} {code}: {description}")
        self.status, self.code, self.description, self.body = status, code, description, body


class _Transport(ABC):
    """How `Portal` reaches a sandbox: in-process through its WSGI app, or over HTTP."""

    @abstractmethod
    def request(self, method: str, path: str, *, host: str | None = None, json_body: Any = None,
                form: Any = None) -> tuple[int, Any, dict]:
        """Send one request; returns (status, decoded JSON body or text, headers)."""


class _InProcess(_Transport):
    def __init__(self, sandbox: Sandbox):
        from .server import create_wsgi_app

        self.sandbox = sandbox
        self.app = create_wsgi_app(sandbox)
        self.test_client = self.app.test_client()
        self.base = (sandbox.base_url or f"http://{sandbox.config.host}:{sandbox.config.port}").rstrip("/")

    def request(self, method, path, *, host=None, json_body=None, form=None):
        base = f"http://{host}" if host else self.base
        resp = self.test_client.open(path, method=method, base_url=base, json=json_body, data=form)
        try:
            body = json.loads(resp.get_data(as_text=True) or "null")
        except ValueError:
            body = resp.get_data(as_text=True)
        return resp.status_code, body, dict(resp.headers)


class _Http(_Transport):
    def __init__(self, base_url: str, timeout: float):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method, path, *, host=None, json_body=None, form=None):
        base = f"http://{host}" if host else self.base
        resp = self.session.request(method, base + path, json=json_body, data=form, timeout=self.timeout,
                                    allow_redirects=False)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return resp.status_code, body, dict(resp.headers)


class Portal:
    """One portal of a sandbox (the first one unless `member_id` says otherwise)."""

    def __init__(self, target: Sandbox | str, member_id: str | None = None, *, timeout: float = 30.0):
        self._t: _Transport = _InProcess(target) if isinstance(target, Sandbox) else _Http(target, timeout)
        if member_id is None:
            found = self._admin("portals")
            if not found:
                raise SandboxError(404, "PORTAL_NOT_FOUND", "The sandbox has no portal yet")
            member_id = found[0]["member_id"]
        self.member_id = member_id

    # -- plumbing ------------------------------------------------------------------------------
    def _admin(self, _op_name: str, **params: Any) -> Any:
        status, body, _ = self._t.request("POST", f"/sandbox/{_op_name}",
                                          json_body={k: v for k, v in params.items() if v is not None})
        if status >= 400:
            body = body if isinstance(body, dict) else {}
            raise SandboxError(status, body.get("error", ""), body.get("error_description", ""), body)
        return body

    def _op(self, _op_name: str, **params: Any) -> Any:
        return self._admin(_op_name, member_id=self.member_id, **params)

    @classmethod
    def create(cls, target: Sandbox | str, *, plan: str = "standard", data_size: int = 0,
               domain: str | None = None) -> "Portal":
        """Create one more portal (its own port when served) and return its `Portal`."""
        first = cls.__new__(cls)
        first._t = _InProcess(target) if isinstance(target, Sandbox) else _Http(target, 30.0)
        info = first._admin("create_portal", plan=plan, data_size=data_size, domain=domain)
        first.member_id = info["member_id"]
        return first

    # -- portal --------------------------------------------------------------------------------
    def info(self) -> dict:
        """member_id, domain, plan, client_endpoint, old_domains, deleted, payment_required."""
        return next(p for p in self._admin("portals") if p["member_id"] == self.member_id)

    @property
    def domain(self) -> str:
        return self.info()["domain"]

    def change_domain(self, domain: str | None = None) -> dict:
        """Move the portal to a new domain (a new port when served); the old one answers 302."""
        return self._op("change_domain", domain=domain)

    def set_state(self, *, deleted: bool | None = None, payment_required: bool | None = None) -> dict:
        """Mark the portal deleted or its payment required."""
        return self._op("set_portal_state", deleted=deleted, payment_required=payment_required)

    def create_webhook(self, user_id: int = 1, scopes: list[str] | None = None, code: str | None = None) -> dict:
        """An incoming webhook; returns ``{"url", "code", "user_id", "scopes"}``."""
        return self._op("create_webhook", user_id=user_id, scopes=scopes, code=code)

    def add_user(self, name: str, *, last_name: str = "", email: str = "", departments: list[int] | None = None,
                 is_admin: bool = False, work_position: str = "") -> dict:
        """Add a user who has just registered; apps bound to ONUSERADD hear about it."""
        return self._op("add_user", name=name, last_name=last_name, email=email, departments=departments,
                        is_admin=is_admin, work_position=work_position)

    def limits(self, *, reset: bool = False) -> dict:
        """Limiter parameters, request counters (by method, 503s, 429s) and table sizes."""
        return self._op("limits", reset=reset)

    def expire_tokens(self) -> int:
        """Expire every access token of this portal now; returns how many."""
        return self._op("expire_tokens")["count"]

    # -- apps ----------------------------------------------------------------------------------
    def register_app(self, *, name: str = "App", handler_url: str = "", install_url: str = "",
                     scopes: list[str] | None = None, client_id: str | None = None,
                     client_secret: str | None = None, version: int = 1) -> dict:
        """Register a local app; returns client_id, client_secret and the URLs."""
        return self._admin("register_app", name=name, handler_url=handler_url, install_url=install_url,
                           scopes=scopes, client_id=client_id, client_secret=client_secret, version=version)

    def install(self, client_id: str, *, user_id: int = 1, mode: str | None = None, language_id: str = "en",
                status: str = "") -> dict:
        """Install the app: install-page frame POST (mode "frame") or ONAPPINSTALL (mode "event")."""
        return self._op("install", client_id=client_id, user_id=user_id, mode=mode, language_id=language_id,
                        status=status or None)

    def finish_install(self, client_id: str) -> dict:
        """`installFinish`: events are delivered from now on."""
        return self._op("finish_install", client_id=client_id)

    def update_app(self, client_id: str, version: int | None = None) -> dict:
        """A new version: new application_token, ONAPPUPDATE to bound handlers."""
        return self._op("update_app", client_id=client_id, version=version)

    def uninstall(self, client_id: str, *, clean: bool = True) -> dict:
        """Uninstall: ONAPPUNINSTALL (no tokens) to bound handlers; every token dies."""
        return self._op("uninstall", client_id=client_id, clean=clean)

    def installation(self, client_id: str) -> dict:
        """application_token, scopes, installed, handlers, placements, robots, options."""
        return self._op("installation", client_id=client_id)

    def issue_tokens(self, client_id: str, user_id: int = 1) -> dict:
        """A fresh token pair, shaped as the OAuth server's token answer."""
        return self._op("issue_tokens", client_id=client_id, user_id=user_id)

    def authorize(self, client_id: str, user_id: int = 1) -> dict:
        """An authorization code (valid 30 s) plus domain, member_id, server_domain."""
        return self._op("authorize", client_id=client_id, user_id=user_id)

    # -- callbacks -----------------------------------------------------------------------------
    def set_delivery_faults(self, *, drop_share: float = 0.0, delay_share: float = 0.0,
                            delay_seconds: float = 1.0, seed: int | None = None) -> dict:
        """Drop or delay a seeded share of online event deliveries."""
        return self._op("set_delivery_faults", drop_share=drop_share, delay_share=delay_share,
                        delay_seconds=delay_seconds, seed=seed)

    def deliveries(self, *, client_id: str | None = None, kind: str | None = None, event: str | None = None,
                   since_id: int = 0) -> list[dict]:
        """Portal-to-app requests so far with status (sent, failed, dropped, delayed, queued)."""
        return self._op("deliveries", client_id=client_id, kind=kind, event=event, since_id=since_id)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery has been attempted."""
        return self._admin("flush", timeout=timeout)["done"]

    def add_rule(self, stage_id: str, robot_code: str, properties: dict | None = None,
                 client_id: str | None = None) -> dict:
        """Automation rule: a deal entering `stage_id` runs robot `robot_code`."""
        return self._op("add_rule", stage_id=stage_id, robot_code=robot_code, properties=properties,
                        client_id=client_id)

    def rules(self) -> list[dict]:
        return self._op("rules")

    def delete_rule(self, rule_id: int) -> bool:
        return self._op("delete_rule", rule_id=rule_id)["deleted"]

    def robot_runs(self) -> list[dict]:
        """Robot invocations with status and the values returned through `bizproc.event.send`."""
        return self._op("robot_runs")

    def move_deal(self, deal_id: int, stage_id: str, *, user_id: int | None = 1,
                  category_id: int | None = None) -> dict:
        """Move a deal to a stage through the CRM; `user_id=None` makes it a change "by automation"."""
        params: dict[str, Any] = {"member_id": self.member_id, "deal_id": deal_id, "stage_id": stage_id,
                                  "user_id": user_id, "category_id": category_id}
        status, body, _ = self._t.request("POST", "/sandbox/move_deal",
                                          json_body={k: v for k, v in params.items()
                                                     if v is not None or k == "user_id"})
        if status >= 400:
            raise SandboxError(status, body.get("error", ""), body.get("error_description", ""), body)
        return body

    def bulk_update(self, entity_type_id: int, ids: list[int], fields: dict, *, user_id: int | None = 1) -> dict:
        """A mass change of records through the CRM, firing events like REST updates; ``{id}`` in a string
        value becomes the record's id. Returns ``{"updated": n, "missing": [ids]}``."""
        return self._op("bulk_update", entity_type_id=entity_type_id, ids=list(ids), fields=fields,
                        user_id=0 if user_id is None else user_id)

    def bulk_delete(self, entity_type_id: int, ids: list[int], *, user_id: int | None = 1) -> dict:
        """Delete records through the CRM (events fire per record). Returns ``{"deleted": n, "missing": [ids]}``."""
        return self._op("bulk_delete", entity_type_id=entity_type_id, ids=list(ids),
                        user_id=0 if user_id is None else user_id)

    def open_placement(self, client_id: str, placement: str, options: Any = None, *, user_id: int = 1,
                       handler: str | None = None, lang: str | None = None) -> dict:
        """Open a bound placement as a user: returns the frame POST and the app's answer."""
        return self._op("open_placement", client_id=client_id, placement=placement, options=options,
                        user_id=user_id, handler=handler, lang=lang)

    def open_app(self, client_id: str, *, user_id: int = 1, lang: str | None = None) -> dict:
        """Open the app page (PLACEMENT=DEFAULT; the install page while installation is unfinished)."""
        return self.open_placement(client_id, "DEFAULT", user_id=user_id, lang=lang)

    # -- REST ----------------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, *, auth: str | None = None,
             webhook: str | None = None) -> dict:
        """Call a portal REST method with an access token or a webhook URL; returns the envelope.

        Raises `SandboxError` with the documented status and code when Bitrix24 would answer an error.
        """
        info = self.info()
        if webhook:
            path = "/" + webhook.split("://", 1)[-1].split("/", 1)[1].rstrip("/") + f"/{method}"
            host = webhook.split("://", 1)[-1].split("/", 1)[0]
            body = dict(params or {})
        else:
            path, host, body = f"/rest/{method}", info["domain"], dict(params or {}, auth=auth)
        status, data, _ = self._t.request("POST", path, host=host, json_body=body)
        if status >= 400 or (isinstance(data, dict) and "error" in data):
            data = data if isinstance(data, dict) else {}
            raise SandboxError(status, data.get("error", ""), data.get("error_description", ""), data)
        return data
