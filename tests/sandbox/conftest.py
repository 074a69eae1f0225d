"""Fixtures for the sandbox tests: a real HTTP sandbox in this process, webhooks and an SDK client."""
from __future__ import annotations

import pytest
import requests

from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox

FULL_SCOPES = ["crm", "user", "department", "basic", "placement", "bizproc"]


@pytest.fixture(scope="session")
def sandbox_handle():
    """One seeded sandbox for the whole session, limits off (tests of limits make their own)."""
    handle = start_sandbox(SandboxConfig(data_size=500, limits="off", seed=7))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def portal(sandbox_handle):
    return sandbox_handle.portal


@pytest.fixture(scope="session")
def hook_url(portal) -> str:
    """An admin's incoming webhook with every scope: ``http://host:port/rest/1/<code>/``."""
    return portal.webhook_url(portal.add_webhook(1, FULL_SCOPES))


@pytest.fixture
def rest(hook_url):
    """Call a method through the webhook; returns (status, json)."""
    def call(method: str, params: dict | None = None, **kw):
        r = requests.post(hook_url + method, json=params or {}, timeout=30, **kw)
        return r.status_code, r.json()
    return call


@pytest.fixture
def fresh_sandbox():
    """A sandbox of one's own (for limits and destructive tests); yields a factory of configs."""
    handles = []

    def make(**kw):
        cfg = SandboxConfig(**{"data_size": 60, "seed": 3, **kw})
        h = start_sandbox(cfg)
        handles.append(h)
        return h
    yield make
    for h in handles:
        h.stop()
