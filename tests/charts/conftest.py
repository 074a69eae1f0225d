"""Chart tests: a seeded sandbox portal connected by an incoming webhook, its deals mirrored once per test."""
import pytest

from app.models import ConnectionKind, Portal, PortalStatus
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=120, limits="off", seed=7))
    yield handle
    handle.stop()


@pytest.fixture()
def app_overrides(sandbox):
    return {"B24_ALLOW_HTTP": "true", "B24_OAUTH_URL": sandbox.base_url + "/oauth"}


def _connect(db, sandbox, portal_state):
    hook = portal_state.add_webhook(1, ["crm", "user", "department"])
    p = Portal(member_id=portal_state.member_id, domain=portal_state.domain, status=PortalStatus.active,
               connection_kind=ConnectionKind.webhook, webhook_url=portal_state.webhook_url(hook),
               client_endpoint=portal_state.client_endpoint)
    db.add(p)
    db.commit()
    return p


@pytest.fixture()
def portal(app, db, sandbox):
    return _connect(db, sandbox, sandbox.portal)


@pytest.fixture()
def mirrored(app, db, portal):
    """The portal with deals, contacts and companies mirrored (full sync)."""
    from app.sync import service

    for entity in ("deal", "contact", "company"):
        run = service.run_sync(portal.id, entity, "full")
        assert run.status.value == "succeeded", run.error
    return portal


@pytest.fixture()
def other_portal(app, db, sandbox):
    """A second portal on the same sandbox, its deals mirrored into a schema of its own."""
    from app.sync import service

    p = _connect(db, sandbox, sandbox.add_portal(data_size=15, seed=3))
    assert service.run_sync(p.id, "deal", "full").status.value == "succeeded"
    return p
