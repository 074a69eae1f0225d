"""Read-API tests: a seeded sandbox portal mirrored into PostgreSQL, and API keys for it and for a stranger."""
import pytest

from app.api.auth import create_api_key
from app.models import ConnectionKind, Portal, PortalStatus
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=120, limits="off", seed=11))
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
               client_endpoint=sandbox.portal.client_endpoint, scopes=["crm", "user", "department"])
    db.add(p)
    db.commit()
    return p


@pytest.fixture()
def mirror(app, db, portal):
    """The portal's CRM mirrored (every entity, full sync) and its directory synced."""
    from app.sync import service
    from app.users.service import run_directory_sync

    for spec in service.open_sync(portal).entities():
        run = service.run_sync(portal.id, spec.name, "full")
        assert run.status.value == "succeeded", run.error
    run_directory_sync(portal.id, "cli")
    return portal


@pytest.fixture()
def headers(db, portal):
    key = create_api_key(portal, "tests")
    db.commit()
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture()
def stranger(db):
    """Another installed portal with its own key (and no data)."""
    other = Portal(member_id="stranger-portal-0001", domain="stranger.example", status=PortalStatus.active,
                   scopes=["crm", "user", "department"])
    db.add(other)
    db.commit()
    key = create_api_key(other, "stranger")
    db.commit()
    return other, {"Authorization": f"Bearer {key}"}
