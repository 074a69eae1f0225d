"""Events: `event.bind|get|unbind`, CRM changes turned into deliveries, and ONUSERADD (PROTOCOL.md §5).

CRM code publishes ``crm.changed`` on the portal bus inside the REST request; the listener here only
builds payloads and queues them, so the request never waits for the app. Deliveries go out only for
installations whose install is finished; a seeded share of them is dropped or delayed on purpose.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from ..core import PortalState
from ..errors import RestError, access_denied
from ..registry import Call, method
from .auth import auth_block
from .delivery import Delivery, deliverer
from .install import callbacks
from .model import EventHandler, Installation
from . import offline

CRM_ENTITIES = {"deal": "DEAL", "lead": "LEAD", "contact": "CONTACT", "company": "COMPANY"}
ENTITY_BY_TYPE_ID = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
_ACTIONS = ("ADD", "UPDATE", "DELETE")

# event name -> scope the app needs to bind it (None: any app)
KNOWN_EVENTS: dict[str, str | None] = {
    **{f"ONCRM{e}{a}": "crm" for e in CRM_ENTITIES.values() for a in _ACTIONS},
    **{f"ONCRMDYNAMICITEM{a}": "crm" for a in _ACTIONS},
    "ONCRMDEALMOVETOCATEGORY": "crm",
    "ONUSERADD": "user",
    "ONAPPINSTALL": None, "ONAPPUNINSTALL": None, "ONAPPUPDATE": None, "ONAPPPAYMENT": None,
    "ONAPPTEST": None, "ONOFFLINEEVENT": None,
}


def event_scope(name: str) -> tuple[bool, str | None]:
    """Whether `name` exists and which scope it needs (per-type ONCRMDYNAMICITEMADD_<id> included)."""
    if name in KNOWN_EVENTS:
        return True, KNOWN_EVENTS[name]
    base, _, suffix = name.rpartition("_")
    if base in ("ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE") and suffix.isdigit():
        return True, "crm"
    return False, None


def _field(rec: dict | None, *names: str) -> Any:
    if not rec:
        return None
    for n in names:
        if n in rec:
            return rec[n]
    return None


def crm_events(entity_type_id: int | None, entity: str, action: str, obj_id: Any,
               old: dict | None, new: dict | None) -> list[tuple[str, dict]]:
    """The events (name, data) one CRM change fires, as Bitrix24 names and shapes them."""
    action = action.upper()
    if entity == "item" and entity_type_id in ENTITY_BY_TYPE_ID:
        entity = ENTITY_BY_TYPE_ID[entity_type_id]  # ONCRMDYNAMICITEM* never fire for these types
    if entity in CRM_ENTITIES:
        out = [(f"ONCRM{CRM_ENTITIES[entity]}{action}", {"FIELDS": {"ID": str(obj_id)}})]
        if entity == "deal" and action == "UPDATE":
            old_cat, new_cat = _field(old, "CATEGORY_ID", "categoryId"), _field(new, "CATEGORY_ID", "categoryId")
            if old is not None and new is not None and str(old_cat) != str(new_cat):
                stage = _field(new, "STAGE_ID", "stageId")
                out.append(("ONCRMDEALMOVETOCATEGORY", {"FIELDS": {"ID": str(obj_id), "CATEGORY_ID": str(new_cat),
                                                                  "STAGE_ID": str(stage)}}))
        return out
    if entity == "user":
        return [("ONUSERADD", dict(new or {}))] if action == "ADD" else []
    data = {"FIELDS": {"ID": str(obj_id), "ENTITY_TYPE_ID": str(entity_type_id)}}
    return [(f"ONCRMDYNAMICITEM{action}", data), (f"ONCRMDYNAMICITEM{action}_{entity_type_id}", data)]


def acting_user(caller: Any) -> int | None:
    """The user whose tokens an event carries; None for changes made by automation (no caller)."""
    if caller is None or not getattr(caller, "user_id", 0):
        return None
    return int(caller.user_id)


def fire(portal: PortalState, events: list[tuple[str, dict]], user_id: int | None) -> list[Delivery]:
    """Queue `events` to every matching handler of every finished installation; feed offline queues."""
    cb = callbacks(portal)
    out: list[Delivery] = []
    with portal.lock:
        for inst in list(portal.installations.values()):
            if inst.uninstalled or not inst.installed:
                continue  # no events before installFinish (PROTOCOL.md §1.5)
            for name, data in events:
                for h in [h for h in inst.handlers if h.event == name]:
                    if h.offline:
                        offline.push(inst, h, name, data, user_id)
                        continue
                    uid = h.auth_type or user_id
                    payload = {"event": name, "event_handler_id": str(h.id), "data": data,
                               "ts": str(int(time.time())), "auth": auth_block(inst, uid)}
                    drop = cb.rng.random() < cb.drop_share
                    delay = cb.delay_seconds if (not drop and cb.rng.random() < cb.delay_share) else 0.0
                    out.append(deliverer(portal.sandbox).submit(
                        Delivery(0, portal.member_id, inst.client_id, "event", name, h.handler, payload),
                        delay=delay, drop=drop))
    return out


def make_crm_listener(portal: PortalState):
    """The ``crm.changed`` subscriber of `portal` (events, then robots)."""
    from . import robots

    def on_change(*, entity_type_id: int | None = None, entity: str = "", action: str = "", id: Any = None,
                  old: dict | None = None, new: dict | None = None, caller: Any = None, **_: Any) -> None:
        evs = crm_events(entity_type_id, entity, action, id, old, new)
        fire(portal, evs, acting_user(caller))
        robots.on_crm_change(portal, entity_type_id, entity, action, id, old, new)

    return on_change


def make_user_listener(portal: PortalState):
    """The ``user.added`` subscriber: ONUSERADD with the user's fields as `data`."""

    def on_user(*, user: dict, caller: Any = None, **_: Any) -> None:
        fire(portal, [("ONUSERADD", dict(user))], acting_user(caller))

    return on_user


# -- REST methods --------------------------------------------------------------------------------

def app_installation(call: Call) -> Installation:
    """The caller's installation; 400 ACCESS_DENIED "Application context required" for webhooks."""
    inst = call.portal.installations.get(call.caller.client_id or "")
    if not call.caller.is_app or inst is None:
        raise RestError(400, "ACCESS_DENIED", "Access denied! Application context required")
    return inst


def valid_handler_url(url: Any) -> bool:
    """http(s) URL with a host; loopback hosts are accepted (a deliberate sandbox difference)."""
    if not isinstance(url, str) or not url:
        return False
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def _auth_type(call: Call) -> int:
    raw = call.param("auth_type", 0)
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        raise RestError(400, "ERROR_ARGUMENT", "Argument 'auth_type' must be a user id")


@method("event.bind", app_only=True)
def event_bind(call: Call) -> bool:
    """Bind a handler (online) or an offline queue to an event (PROTOCOL.md §5.1)."""
    inst = app_installation(call)
    name = str(call.param("event", "") or "").upper()
    known, scope = event_scope(name)
    if not known or (scope and scope not in inst.scopes):
        raise RestError(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
    offline_ = str(call.param("event_type", "online") or "online").lower() == "offline"
    auth_type = _auth_type(call)
    if offline_ and not call.caller.is_admin:
        raise access_denied("Access denied! Offline events binding requires administrator access rights")
    if not call.caller.is_admin and auth_type not in (0, call.caller.user_id):
        raise access_denied("Access denied! Only administrator can bind events with other user auth")
    handler = "" if offline_ else call.param("handler", "")
    if not offline_ and not valid_handler_url(handler):
        raise RestError(400, "ERROR_HANDLER_URL", "Wrong handler URL")
    connector = str(call.param("auth_connector", "") or "") if offline_ else ""
    options = call.param("options") or {}
    with call.portal.lock:
        for h in inst.handlers:
            if (h.event, h.handler, h.auth_type, h.offline, h.auth_connector) == (name, handler, auth_type, offline_, connector):
                raise RestError(400, "ERROR_CORE", "Unable to set event handler: Handler already binded")
        cb = callbacks(call.portal)
        inst.handlers.append(EventHandler(cb.new_id(), name, handler, auth_type, offline_, connector,
                                          options if isinstance(options, dict) else {}))
    return True


@method("event.get", app_only=True)
def event_get(call: Call) -> list:
    """The app's bound handlers; non-admins see only their own (PROTOCOL.md §5.1)."""
    inst = app_installation(call)
    return [h.as_result() for h in inst.handlers
            if call.caller.is_admin or h.auth_type in (0, call.caller.user_id)]


@method("event.unbind", app_only=True)
def event_unbind(call: Call) -> dict:
    """Remove handlers matching event + handler (+ auth_type when given); returns ``{"count": n}``."""
    inst = app_installation(call)
    name = str(call.param("event", "") or "").upper()
    if not name:
        raise RestError(400, "ERROR_ARGUMENT", "Argument 'event' is null or empty", argument="event")
    offline_ = str(call.param("event_type", "online") or "online").lower() == "offline"
    if offline_ and not call.caller.is_admin:
        raise access_denied("Access denied! Offline events unbinding requires administrator access rights")
    handler = "" if offline_ else str(call.param("handler", "") or "")
    has_auth_type = call.param("auth_type") is not None
    auth_type = _auth_type(call)
    with call.portal.lock:
        keep, n = [], 0
        for h in inst.handlers:
            hit = (h.event == name and h.offline == offline_ and (offline_ or h.handler == handler)
                   and (not has_auth_type or h.auth_type == auth_type))
            n += hit
            if not hit:
                keep.append(h)
        inst.handlers[:] = keep
    return {"count": n}
