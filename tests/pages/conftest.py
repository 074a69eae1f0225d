"""Page and dashboards-API tests reuse the lifecycle suite's live sandbox and installed Hub24."""
from tests.lifecycle.conftest import app_overrides, hub, hub_server, installed, registration, sandbox_handle  # noqa: F401
