"""Sync tests: a seeded sandbox portal, connected to Hub24 by an incoming webhook."""
import pytest

from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox
from tests.sandbox_fixtures import sandbox_settings, webhook_portal


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=160, limits="off", seed=7))
    yield handle
    handle.stop()


@pytest.fixture()
def app_overrides(sandbox):
    return sandbox_settings(sandbox)


@pytest.fixture()
def portal(app, db, sandbox):
    return webhook_portal(db, sandbox)
