"""Lifecycle tests: a sandbox portal in this process, and Hub24 served over HTTP so the portal can call it.

Each test registers a fresh Hub24 app (its own client id) in the session's sandbox portal, so installs of
earlier tests never leak; the database is rolled back per test as everywhere else.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from sandbox import Portal
from sandbox.core import SandboxConfig
from sandbox.oauth import oauth_base_url
from sandbox.run import start_sandbox

logging.getLogger("werkzeug").setLevel(logging.WARNING)

FIXTURES = Path("/work/shared/bitrix24/fixtures")
SCOPES = ["crm", "user", "department", "placement", "bizproc", "basic"]


def fixture(name: str) -> Any:
    """The documented `example` block of a fixture in shared/bitrix24/fixtures."""
    return json.loads((FIXTURES / name).read_text())["example"]


def php_pairs(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested dict as the PHP bracket-keyed form pairs Bitrix24 posts."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [(prefix, "" if data is None else str(data))]
    out: list[tuple[str, str]] = []
    for k, v in items:
        out.extend(php_pairs(v, f"{prefix}[{k}]" if prefix else str(k)))
    return out


from tests.sandbox_fixtures import AppDispatch as _Dispatch  # noqa: E402


@pytest.fixture(scope="session")
def sandbox_handle():
    handle = start_sandbox(SandboxConfig(data_size=20, limits="off", seed=11))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def hub_server():
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield dispatch, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def registration(sandbox_handle, hub_server):
    """A fresh Hub24 app registered in the sandbox portal (not installed yet)."""
    _, base = hub_server
    portal = Portal(sandbox_handle.sandbox)
    client_id = f"local.{secrets.token_hex(6)}.{secrets.randbelow(10**8):08d}"
    reg = portal.register_app(name="Hub24", handler_url=base + "/", install_url=base + "/install", scopes=SCOPES,
                              client_id=client_id)
    return {"portal": portal, "client_id": reg["client_id"], "client_secret": reg["client_secret"], "base": base}


@pytest.fixture()
def app_overrides(registration, sandbox_handle):
    return {"APP_BASE_URL": registration["base"], "B24_CLIENT_ID": registration["client_id"],
            "B24_CLIENT_SECRET": registration["client_secret"], "B24_ALLOW_HTTP": "true",
            "B24_OAUTH_URL": oauth_base_url(sandbox_handle.sandbox)}


@pytest.fixture()
def hub(app, hub_server, registration):
    """Hub24 (the test's app) answering the sandbox over HTTP; yields the registration info."""
    dispatch, _ = hub_server
    dispatch.target = app
    yield registration
    registration["portal"].flush(timeout=10)
    dispatch.target = None


@pytest.fixture()
def installed(hub, db):
    """Hub24 installed through the install page and finished, as an administrator would do it."""
    from app.models import Portal as PortalRow

    portal = hub["portal"]
    out = portal.install(hub["client_id"], mode="frame")
    delivery = out["delivery"]
    assert delivery["http_status"] == 200, delivery["response"][:500]
    token = re.search(r'frameToken:\s*"([^"]+)"', delivery["response"]).group(1)
    portal.finish_install(hub["client_id"])
    row = db.query(PortalRow).filter_by(member_id=portal.member_id).one()
    return {**hub, "row_id": row.id, "frame_token": token, "install_response": delivery["response"]}


def run_jobs(app, *queues: str) -> None:
    """Run every queued job on `queues` in this process (RQ burst)."""
    from app.jobs import AppSimpleWorker, QUEUES, get_queue

    conn = app.extensions["redis"]
    worker = AppSimpleWorker([get_queue(q, conn) for q in (queues or QUEUES)], connection=conn)
    worker.flask_app = app
    worker.work(burst=True)


def post_form(client, path: str, body: Any, query: dict | None = None):
    """POST `body` form-encoded with PHP bracket keys, as Bitrix24 does."""
    from urllib.parse import urlencode

    return client.post(path, query_string=query or {}, data=urlencode(php_pairs(body)),
                       content_type="application/x-www-form-urlencoded")
