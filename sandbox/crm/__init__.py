"""The CRM of a sandbox portal: store, field catalogues and the REST methods that use them.

Importing the package registers the methods (legacy CRM, crm.item/type/category/status, users,
departments and system methods). `attach(portal)` gives a portal its empty `CrmState`.
"""
from __future__ import annotations

from ..core import PortalState
from . import items, legacy, users  # noqa: F401 - method registration
from .state import CrmError, CrmState

__all__ = ["CrmError", "CrmState", "attach"]


def attach(portal: PortalState) -> CrmState:
    """Create the portal's (empty) CRM."""
    portal.crm = CrmState(portal)
    return portal.crm
