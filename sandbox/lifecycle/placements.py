"""Placements: `placement.bind|get|unbind|list` (PROTOCOL.md §6). Opening one is `install.open_frame`."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from ..errors import RestError
from ..registry import Call, method
from .events import valid_handler_url
from .model import Installation, PlacementBinding

_TYPES = ("LEAD", "DEAL", "CONTACT", "COMPANY", "QUOTE", "SMART_INVOICE", "ORDER")
_SUFFIXES = ("DETAIL_TAB", "DETAIL_TOOLBAR", "LIST_MENU", "LIST_TOOLBAR", "DETAIL_ACTIVITY",
             "ACTIVITY_TIMELINE_MENU", "DOCUMENTGENERATOR_BUTTON", "ROBOT_DESIGNER_TOOLBAR")
CRM_PLACEMENTS = {f"CRM_{t}_{s}" for t in _TYPES for s in _SUFFIXES} | {
    "CRM_ACTIVITY_LIST_MENU", "CRM_ANALYTICS_MENU", "CRM_ANALYTICS_TOOLBAR", "CRM_FUNNELS_TOOLBAR",
    "CRM_DETAIL_SEARCH", "CRM_REQUISITE_AUTOCOMPLETE", "CRM_BANK_DETAIL_AUTOCOMPLETE"}
OTHER_PLACEMENTS = {"LEFT_MENU", "REST_APP_URI", "PAGE_BACKGROUND_WORKER", "USER_PROFILE_MENU"}
_DYNAMIC = re.compile(r"^CRM_DYNAMIC_(\d+)_(" + "|".join(_SUFFIXES) + ")$")


def placement_scope(code: str) -> str | None:
    """Scope a placement needs besides `placement` ("crm" for CRM ones), or "" if the code is unknown."""
    if code in CRM_PLACEMENTS or _DYNAMIC.match(code):
        return "crm"
    if code in OTHER_PLACEMENTS:
        return None
    return ""


def _app(call: Call, admin: bool = True) -> Installation:
    inst = call.portal.installations.get(call.caller.client_id or "")
    if not call.caller.is_app or inst is None:
        raise RestError(403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
    if admin and not call.caller.is_admin:
        raise RestError(403, "ACCESS_DENIED", "Access denied! Administrator authorization required")
    return inst


def _arg_error(name: str) -> RestError:
    # documented quirk: placement.bind validation errors come back with HTTP 200 (PROTOCOL.md §3.4)
    return RestError(200, "ERROR_ARGUMENT", f"Argument '{name}' is null or empty", argument=name)


def _str(call: Call, name: str) -> str:
    value = call.param(name, "")
    return value if isinstance(value, str) else ""


@method("placement.bind", "placement")
def placement_bind(call: Call) -> bool:
    """Bind a handler to a placement (PROTOCOL.md §6.1)."""
    inst = _app(call)
    code = _str(call, "PLACEMENT").upper()
    handler = _str(call, "HANDLER")
    if not code:
        raise _arg_error("PLACEMENT")
    need = placement_scope(code)
    if need == "" or (need and need not in inst.scopes):
        raise RestError(400, "ERROR_PLACEMENT_NOT_FOUND", "Placement not found")
    if not handler:
        raise _arg_error("HANDLER")
    if urlparse(handler).scheme not in ("http", "https"):
        raise RestError(400, "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported event handler protocol")
    if not valid_handler_url(handler):
        raise RestError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
    user_id = call.param("USER_ID")
    if user_id not in (None, "", 0, "0") and code != "PAGE_BACKGROUND_WORKER":
        raise RestError(200, "ERROR_PLACEMENT_USER_MODE", "User mode is not available for this placement")
    lang_all = call.param("LANG_ALL") or {}
    options = call.param("OPTIONS")
    with call.portal.lock:
        if code == "REST_APP_URI" and any(b.placement == code for b in inst.placements):
            raise RestError(200, "ERROR_PLACEMENT_MAX_COUNT", "Placement max count exceeded")
        if any(b.placement == code and b.handler == handler for b in inst.placements):
            raise RestError(400, "ERROR_PLACEMENT_HANDLER_ALREADY_BINDED", "Handler already binded")
        inst.placements.append(PlacementBinding(
            placement=code, handler=handler, title=_str(call, "TITLE"), description=_str(call, "DESCRIPTION"),
            group_name=_str(call, "GROUP_NAME"), lang_all=lang_all if isinstance(lang_all, dict) else {},
            options=options if isinstance(options, dict) and options else [],
            user_id=int(str(user_id or 0)) if str(user_id or 0).isdigit() else 0))
    return True


def _as_result(b: PlacementBinding) -> dict[str, Any]:
    lang_all = b.lang_all or {"en": {"TITLE": b.title, "DESCRIPTION": b.description, "GROUP_NAME": b.group_name}}
    return {"placement": b.placement, "userId": b.user_id, "handler": b.handler, "options": b.options,
            "title": b.title, "description": b.description, "langAll": lang_all}


@method("placement.get", "placement")
def placement_get(call: Call) -> list:
    """The app's placement bindings."""
    inst = _app(call, admin=False)
    return [_as_result(b) for b in inst.placements]


@method("placement.unbind", "placement")
def placement_unbind(call: Call) -> dict:
    """Remove bindings of `PLACEMENT` (only `HANDLER` when given); returns ``{"count": n}``."""
    inst = _app(call)
    code = _str(call, "PLACEMENT").upper()
    if not code:
        raise _arg_error("PLACEMENT")
    handler = _str(call, "HANDLER")
    with call.portal.lock:
        keep = [b for b in inst.placements if not (b.placement == code and (not handler or b.handler == handler))]
        n = len(inst.placements) - len(keep)
        inst.placements[:] = keep
    return {"count": n}


@method("placement.list", "placement")
def placement_list(call: Call) -> list:
    """Placement codes available to the app (`SCOPE` filters; `FULL` lists all)."""
    inst = _app(call, admin=False)
    full = str(call.param("FULL", "")).lower() in ("1", "true", "y")
    scope = _str(call, "SCOPE")
    codes = sorted(CRM_PLACEMENTS | OTHER_PLACEMENTS)
    out = []
    for code in codes:
        need = placement_scope(code)
        if scope and need != scope:
            continue
        if not full and need and need not in inst.scopes:
            continue
        out.append(code)
    return out
