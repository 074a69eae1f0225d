"""Read-API tests: a seeded sandbox portal mirrored into PostgreSQL, and API keys for it and for a stranger."""
import pytest

from app.api.auth import create_api_key
from app.models import Portal, PortalStatus
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox
from tests.sandbox_fixtures import sandbox_settings, webhook_portal


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=120, limits="off", seed=11))
    yield handle
    handle.stop()


@pytest.fixture()
def app_overrides(sandbox):
    return sandbox_settings(sandbox)


@pytest.fixture()
def portal(app, db, sandbox):
    return webhook_portal(db, sandbox)


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
