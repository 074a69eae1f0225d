"""Robots: `bizproc.robot.*`, automation rules on deal stages, invocations and their answers (PROTOCOL.md §7).

A rule says "when a deal enters stage S, run robot C with these properties". Entering the stage (any
CRM change that sets a new `STAGE_ID`) queues a form POST to the robot's handler; when the robot waits
for an answer (`USE_SUBSCRIPTION` not ``N``) the run stays `waiting` until `bizproc.event.send`.
"""
from __future__ import annotations

import random
import re
import secrets
import time
from typing import Any
from urllib.parse import urlparse

from ..core import PortalState
from ..errors import RestError, access_denied
from ..registry import Call, method
from .auth import auth_block
from .delivery import Delivery, deliverer
from .events import app_installation, valid_handler_url
from .install import callbacks
from .model import AutomationRule, Installation, Robot, RobotRun

CODE_RE = re.compile(r"^[a-zA-Z0-9._-]+$")
DEAL_DOCUMENT = ["crm", "CCrmDocumentDeal", "DEAL"]


def _fail(text: str, code: str = "ERROR_ACTIVITY_VALIDATION_FAILURE") -> RestError:
    return RestError(400, code, text)


def _admin_app(call: Call) -> Installation:
    inst = app_installation(call)
    if not call.caller.is_admin:
        raise RestError(400, "ACCESS_DENIED", "Access denied! Administrator authorization required")
    return inst


def _fields(src: Any, inst: Installation, robot: Robot | None) -> dict[str, Any]:
    """Validate add/update fields; returns keyword values for `Robot`."""
    def get(name: str, default: Any = None) -> Any:
        if isinstance(src, Call):
            return src.param(name, default)
        for k, v in (src or {}).items():
            if str(k).upper() == name:
                return v
        return default

    out: dict[str, Any] = {}
    handler = get("HANDLER", robot.handler if robot else None)
    if not handler:
        raise _fail("Empty activity handler!")
    if not isinstance(handler, str) or urlparse(handler).scheme not in ("http", "https"):
        raise _fail("Unsupported protocol", "ERROR_UNSUPPORTED_PROTOCOL")
    if not valid_handler_url(handler):
        raise _fail("Wrong handler URL", "ERROR_WRONG_HANDLER_URL")
    app_host = urlparse(inst.app.handler_url or inst.app.install_url or handler).hostname
    if urlparse(handler).hostname != app_host:
        raise _fail("Wrong handler URL: the handler must be on the application domain", "ERROR_WRONG_HANDLER_URL")
    out["handler"] = handler
    name = get("NAME", robot.name if robot else None)
    if not name:
        raise _fail("Empty activity name!")
    out["name"] = name
    for key, attr in (("DESCRIPTION", "description"), ("PROPERTIES", "properties"),
                      ("RETURN_PROPERTIES", "return_properties"), ("DOCUMENT_TYPE", "document_type"),
                      ("FILTER", "filter"), ("USE_PLACEMENT", "use_placement"),
                      ("PLACEMENT_HANDLER", "placement_handler")):
        value = get(key)
        if value is not None:
            out[attr] = value
    for key in ("PROPERTIES", "RETURN_PROPERTIES"):
        props = out.get(key.lower())
        if props is not None and not isinstance(props, dict):
            raise _fail(f"Wrong {key} format!")
        for sys_name in (props or {}):
            if not re.match(r"^[a-zA-Z][a-zA-Z0-9_]*$", str(sys_name)):
                raise _fail(f"Wrong property key ({sys_name})!")
    sub = get("USE_SUBSCRIPTION")
    if sub is not None:
        out["use_subscription"] = str(sub).upper()
    uid = get("AUTH_USER_ID")
    if uid not in (None, ""):
        try:
            out["auth_user_id"] = int(uid)
        except (TypeError, ValueError):
            raise _fail("Wrong AUTH_USER_ID!")
    if out.get("use_placement") == "Y" and not (out.get("placement_handler") or (robot and robot.placement_handler)):
        raise _fail("Empty placement handler!")
    return out


@method("bizproc.robot.add", "bizproc", app_only=True)
def robot_add(call: Call) -> bool:
    """Register a robot (PROTOCOL.md §7.1)."""
    inst = _admin_app(call)
    code = call.param("CODE", "")
    if not code:
        raise _fail("Empty activity code!")
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise _fail("Wrong activity code!")
    with call.portal.lock:
        if code in inst.robots:
            raise _fail("Activity or Robot already installed!", "ERROR_ACTIVITY_ALREADY_INSTALLED")
        inst.robots[code] = Robot(code=code, **_fields(call, inst, None))
    return True


@method("bizproc.robot.update", "bizproc", app_only=True)
def robot_update(call: Call) -> bool:
    """Change a robot's fields (`CODE`, `FIELDS`)."""
    inst = _admin_app(call)
    code, fields = call.param("CODE", ""), call.param("FIELDS")
    if not code:
        raise _fail("Empty activity code!")
    if not isinstance(fields, dict) or not fields:
        raise _fail("No fields to update!", "ERROR_ARGUMENT")
    with call.portal.lock:
        robot = inst.robots.get(code)
        if robot is None:
            raise _fail("Activity or Robot not found!", "ERROR_ACTIVITY_NOT_FOUND")
        for attr, value in _fields(fields, inst, robot).items():
            setattr(robot, attr, value)
    return True


@method("bizproc.robot.delete", "bizproc", app_only=True)
def robot_delete(call: Call) -> bool:
    """Remove a robot (`CODE`)."""
    inst = _admin_app(call)
    code = call.param("CODE", "")
    with call.portal.lock:
        if code not in inst.robots:
            raise _fail("Activity or Robot not found!", "ERROR_ACTIVITY_NOT_FOUND")
        del inst.robots[code]
    return True


@method("bizproc.robot.list", "bizproc", app_only=True)
def robot_list(call: Call) -> list:
    """Codes of the app's robots."""
    inst = _admin_app(call)
    return list(inst.robots)


def _run_by_token(call: Call) -> RobotRun:
    token = call.param("EVENT_TOKEN", "")
    cb = callbacks(call.portal)
    for run in cb.runs:
        if run.event_token == token and run.client_id == call.caller.client_id:
            return run
    raise access_denied("Access denied!")


@method("bizproc.event.send", "bizproc", app_only=True)
def event_send(call: Call) -> bool:
    """Return a waiting robot's values; unknown or finished tokens get 403 ACCESS_DENIED."""
    app_installation(call)
    with call.portal.lock:
        run = _run_by_token(call)
        if run.status in ("completed",) or not run.use_subscription:
            raise access_denied("Access denied!")
        values = call.param("RETURN_VALUES") or {}
        run.return_values = values if isinstance(values, dict) else {"value": values}
        message = call.param("LOG_MESSAGE", "")
        if message:
            run.log.append(str(message))
        run.status = "completed"
    return True


@method("bizproc.activity.log", "bizproc", app_only=True)
def activity_log(call: Call) -> bool:
    """Write to a running robot's log without finishing it."""
    app_installation(call)
    with call.portal.lock:
        run = _run_by_token(call)
        if run.status == "completed":
            raise access_denied("Access denied!")
        run.log.append(str(call.param("LOG_MESSAGE", "")))
    return True


# -- automation ----------------------------------------------------------------------------------

def add_rule(portal: PortalState, stage_id: str, robot_code: str, properties: dict | None = None,
             client_id: str | None = None) -> AutomationRule:
    """Configure an automation rule: entering `stage_id` runs robot `robot_code` with `properties`."""
    cb = callbacks(portal)
    with portal.lock:
        rule = AutomationRule(cb.new_id(), str(stage_id), str(robot_code), dict(properties or {}), client_id)
        cb.rules.append(rule)
    return rule


def delete_rule(portal: PortalState, rule_id: int) -> bool:
    """Remove a rule; returns whether it existed."""
    cb = callbacks(portal)
    with portal.lock:
        before = len(cb.rules)
        cb.rules[:] = [r for r in cb.rules if r.id != rule_id]
        return len(cb.rules) != before


def _uniqid() -> str:
    return f"{secrets.token_hex(7)}.{random.randint(10**7, 10**8 - 1)}"


def on_crm_change(portal: PortalState, entity_type_id: Any, entity: str, action: str, obj_id: Any,
                  old: dict | None, new: dict | None) -> list[RobotRun]:
    """Run the robots of the stage a deal just entered (called for every CRM change)."""
    if not (entity == "deal" or (entity == "item" and entity_type_id == 2)) or not new:
        return []
    stage = new.get("STAGE_ID", new.get("stageId"))
    before = (old or {}).get("STAGE_ID", (old or {}).get("stageId"))
    if action.lower() not in ("add", "update") or stage is None or (old and str(before) == str(stage)):
        return []
    cb = callbacks(portal)
    runs = []
    with portal.lock:
        for rule in [r for r in cb.rules if r.stage_id == str(stage)]:
            for inst in list(portal.installations.values()):
                robot = inst.robots.get(rule.robot_code)
                if robot is None or not inst.installed or (rule.client_id and rule.client_id != inst.client_id):
                    continue
                runs.append(_invoke(portal, inst, robot, rule, obj_id))
    return runs


def _invoke(portal: PortalState, inst: Installation, robot: Robot, rule: AutomationRule, deal_id: Any) -> RobotRun:
    cb = callbacks(portal)
    workflow_id = _uniqid()
    token = (f"{workflow_id}|A{random.randint(10000, 99999)}_{random.randint(10000, 99999)}_"
             f"{random.randint(10000, 99999)}_{random.randint(10000, 99999)}|"
             f"{secrets.token_urlsafe(24)}.{secrets.token_hex(32)}")
    waits = robot.use_subscription != "N"
    document_id = ["crm", "CCrmDocumentDeal", f"DEAL_{deal_id}"]
    run = RobotRun(cb.new_id(), rule.id, inst.client_id, robot.code, workflow_id, token, document_id,
                   dict(rule.properties), waits)
    payload = {"workflow_id": workflow_id, "code": robot.code, "document_id": document_id,
               "document_type": DEAL_DOCUMENT, "event_token": token, "properties": dict(rule.properties),
               "use_subscription": "Y" if waits else "N", "timeout_duration": "0", "ts": str(int(time.time())),
               "auth": auth_block(inst, robot.auth_user_id or inst.installed_by)}
    d = deliverer(portal.sandbox).submit(Delivery(0, portal.member_id, inst.client_id, "robot", robot.code,
                                                  robot.handler, payload))
    run.delivery_id = d.id
    run.status = "waiting" if waits else "delivered"
    cb.runs.append(run)
    return run
