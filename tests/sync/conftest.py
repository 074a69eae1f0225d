"""Sync tests: a seeded sandbox portal, connected to Hub24 by an incoming webhook."""
import pytest

from app.models import ConnectionKind, Portal, PortalStatus
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=160, limits="off", seed=7))
    yield handle
    handle.stop()


@pytest.fixture()
def app_overrides(sandbox):
    return {"B24_ALLOW_HTTP": "true", "B24_OAUTH_URL": sandbox.base_url + "/oauth"}


@pytest.fixture()
def portal(app, db, sandbox):
    hook = sandbox.portal.add_webhook(1, ["crm", "user", "department"])
    p = Portal(member_id=sandbox.portal.member_id, domain=sandbox.portal.domain, status=PortalStatus.active,
               connection_kind=ConnectionKind.webhook, webhook_url=sandbox.portal.webhook_url(hook),
               client_endpoint=sandbox.portal.client_endpoint)
    db.add(p)
    db.commit()
    return p
