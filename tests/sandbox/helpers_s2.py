"""Shared fixtures of the portal-to-app tests: a running sandbox and a tiny "app" that records callbacks.

Test modules import the fixtures they use from here (`from tests.sandbox.helpers_s2 import ...`).
"""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox import Portal
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "bitrix24" / "fixtures"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/bitrix24/fixtures")


def fixture(name: str) -> Any:
    """The `example` block of a documented fixture."""
    return json.loads((FIXTURES / name).read_text())["example"]


def nest(pairs: list[tuple[str, str]]) -> dict:
    """PHP bracket keys back into nested dicts (lists stay dicts keyed "0", "1"...)."""
    out: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


class Receiver:
    """A werkzeug server standing in for the app: records every request, answers 200 (or per `routes`)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.routes: dict[str, Callable[[dict], tuple[int, str]]] = {}
        self._cond = threading.Condition()
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _wsgi(self, environ, start_response):
        req = Request(environ)
        rec = {"path": req.path, "method": req.method, "query": dict(req.args.items()),
               "pairs": list(req.form.items(multi=True)), "content_type": req.content_type or ""}
        rec["form"] = nest(rec["pairs"])
        status, text = 200, "ok"
        if req.path in self.routes:
            status, text = self.routes[req.path](rec)
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        return Response(text, status=status)(environ, start_response)

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def wait(self, path: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.time() + timeout
        with self._cond:
            while len(self.on(path)) < count and time.time() < deadline:
                self._cond.wait(0.05)
        return self.on(path)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture()
def handle():
    """A served sandbox (limits off) whose first portal has a small seeded CRM."""
    h = start_sandbox(SandboxConfig(port=0, limits="off", data_size=20))
    yield h
    h.stop()


@pytest.fixture()
def portal(handle):
    """The Python API over HTTP against the running sandbox."""
    return Portal(handle.base_url)


@pytest.fixture()
def installed(portal, receiver):
    """An app (crm, placement, bizproc, user) installed through its install page and finished."""
    app = portal.register_app(name="Hub24", handler_url=receiver.url + "/", install_url=receiver.url + "/install",
                              scopes=["crm", "placement", "bizproc", "user"])
    portal.install(app["client_id"])
    portal.finish_install(app["client_id"])
    tokens = portal.issue_tokens(app["client_id"])
    return {"app": app, "tokens": tokens, "client_id": app["client_id"], "auth": tokens["access_token"]}
