"""Directory tests: a sandbox portal with its seeded people (admins, inactive users, users without e-mail
and a duplicate e-mail), connected to Hub24 by an incoming webhook of user 1 (an administrator)."""
import pytest

from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox
from tests.sandbox_fixtures import sandbox_settings, webhook_portal


@pytest.fixture()
def sandbox():
    handle = start_sandbox(SandboxConfig(data_size=0, limits="off", seed=7))
    yield handle
    handle.stop()


@pytest.fixture()
def app_overrides(sandbox):
    return sandbox_settings(sandbox)


@pytest.fixture()
def portal(app, db, sandbox):
    return webhook_portal(db, sandbox)


def add_portal_user(sandbox, **fields):
    """Put a user into the sandbox portal directly (as the sandbox notes describe); returns its id."""
    users = sandbox.portal.crm.users
    uid = max(users) + 1
    user = {"ID": str(uid), "ACTIVE": True, "NAME": "", "LAST_NAME": "", "SECOND_NAME": "", "EMAIL": "",
            "WORK_POSITION": "", "UF_DEPARTMENT": [1], "USER_TYPE": "employee", "IS_ADMIN": False}
    user.update(fields)
    users[uid] = user
    return uid
