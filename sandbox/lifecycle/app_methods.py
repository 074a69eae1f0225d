"""App-level methods: `app.info`, `app.option.get|set` (PROTOCOL.md §9)."""
from __future__ import annotations

from typing import Any

from ..errors import RestError
from ..registry import Call, method
from .auth import status_of
from .model import Installation

LICENSES = {"standard": ("en_project", "project", "project"), "enterprise": ("en_ent250", "ent250", "ent")}


def _inst(call: Call, code: str = "ACCESS_DENIED", text: str = "Access denied! Application context required") -> Installation:
    inst = call.portal.installations.get(call.caller.client_id or "")
    if not call.caller.is_app or inst is None:
        raise RestError(400, code, text)
    return inst


@method("app.info")
def app_info(call: Call) -> dict[str, Any]:
    """The calling app's installation on this portal (PROTOCOL.md §9)."""
    inst = _inst(call)
    license_, ltype, family = LICENSES.get(call.portal.plan, LICENSES["standard"])
    expired = bool(call.portal.payment_required)
    app_ids = list(call.portal.sandbox.apps)
    return {"ID": app_ids.index(inst.client_id) + 1 if inst.client_id in app_ids else 1,
            "CODE": inst.client_id, "VERSION": inst.version, "STATUS": status_of(inst),
            "INSTALLED": bool(inst.installed), "PAYMENT_EXPIRED": "Y" if expired else "N",
            "DAYS": -1 if expired else None, "LANGUAGE_ID": inst.language_id, "LICENSE": license_,
            "LICENSE_TYPE": ltype, "LICENSE_FAMILY": family}


@method("app.option.set")
def option_set(call: Call) -> bool:
    """Insert or overwrite app options (administrators only)."""
    inst = _inst(call, "AccessException", "Application context required")
    if not call.caller.is_admin:
        raise RestError(400, "AccessException", "Administrator authorization required")
    options = call.param("options")
    if not isinstance(options, dict) or not options:
        raise RestError(400, "ArgumentNullException", "options is empty")
    with call.portal.lock:
        inst.options.update({str(k): v for k, v in options.items()})
    return True


@method("app.option.get")
def option_get(call: Call) -> Any:
    """All options, one option's value, or null for an unknown key."""
    inst = _inst(call, "AccessException", "Application context required")
    name = call.param("option")
    if name in (None, ""):
        return dict(inst.options)
    return inst.options.get(str(name))
