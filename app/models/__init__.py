"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""
from .base import Base
from .inbound import PortalEvent, RobotInvocation
from .portal import ConnectionKind, Portal, PortalStatus, PortalToken

__all__ = ["Base", "ConnectionKind", "Portal", "PortalEvent", "PortalStatus", "PortalToken", "RobotInvocation"]
