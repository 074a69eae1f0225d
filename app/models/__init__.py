"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""
from .access import ApiKey
from .directory import DirectoryDepartment, DirectoryRun, DirectorySettings, DirectoryUser  # noqa: F401
from .base import Base
from .dashboards import Dashboard, DashboardWidget, PortalSettings, RecentQuestion  # noqa: F401
from .inbound import PortalEvent, RobotInvocation
from .portal import ConnectionKind, Portal, PortalStatus, PortalToken
from .sync import RunStatus, SyncMode, SyncRun, SyncState
from ..charts.models import ChartQuestion  # noqa: E402,F401  (charts aggregate lives with its package)

__all__ = ["ApiKey", "Base", "ConnectionKind", "Portal", "PortalEvent", "PortalStatus", "PortalToken", "RobotInvocation", "RunStatus", "SyncMode",
           "SyncRun", "SyncState"]
