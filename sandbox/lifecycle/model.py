"""State of apps installed in a portal: installations, bindings, robots, rules and what was delivered.

Everything here is plain data guarded by `Sandbox.lock`; the behaviour lives in the sibling modules.
"""
from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..core import AppRegistration, PortalState


@dataclass
class EventHandler:
    """One `event.bind` registration (PROTOCOL.md §5.1)."""

    id: int
    event: str  # upper-case event name
    handler: str  # "" for offline bindings
    auth_type: int  # 0: the acting user
    offline: bool = False
    auth_connector: str = ""
    options: dict = field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        return {"event": self.event, "handler": self.handler, "auth_type": str(self.auth_type),
                "offline": 1 if self.offline else 0}


@dataclass
class OfflineEvent:
    """One record of the offline queue: only the latest state per object is kept (PROTOCOL.md §5.5)."""

    id: int
    event_name: str
    object_key: str
    timestamp: float
    data: dict
    additional: Any
    message_id: str
    auth_connector: str = ""
    process_id: str = ""
    error: bool = False


@dataclass
class PlacementBinding:
    """One `placement.bind` registration (PROTOCOL.md §6.1)."""

    placement: str
    handler: str
    title: str = ""
    description: str = ""
    group_name: str = ""
    lang_all: dict = field(default_factory=dict)
    options: Any = field(default_factory=list)
    user_id: int = 0


@dataclass
class Robot:
    """One `bizproc.robot.add` registration (PROTOCOL.md §7.1)."""

    code: str
    handler: str
    name: Any
    auth_user_id: int = 1
    use_subscription: str = ""  # "" or "Y": wait for bizproc.event.send; "N": do not wait
    description: Any = ""
    properties: dict = field(default_factory=dict)
    return_properties: dict = field(default_factory=dict)
    document_type: list = field(default_factory=list)
    filter: dict = field(default_factory=dict)
    use_placement: str = "N"
    placement_handler: str = ""


@dataclass
class Installation:
    """An app installed in one portal: its token, scopes, state and everything it registered."""

    portal: PortalState
    app: AppRegistration
    application_token: str
    scopes: list[str]
    version: int = 1
    installed: bool = False  # installation finished (installFinish, or at once for UI-less apps)
    uninstalled: bool = False
    status: str = ""  # L for local apps, F/D/T/P for marketplace apps
    language_id: str = "en"
    installed_by: int = 1
    handlers: list[EventHandler] = field(default_factory=list)
    offline_events: list[OfflineEvent] = field(default_factory=list)
    placements: list[PlacementBinding] = field(default_factory=list)
    robots: dict[str, Robot] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    user_tokens: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # user -> (access, refresh)

    @property
    def client_id(self) -> str:
        return self.app.client_id


@dataclass
class AutomationRule:
    """A stage's automation rule: when a deal enters `stage_id`, run robot `robot_code`."""

    id: int
    stage_id: str
    robot_code: str
    properties: dict = field(default_factory=dict)
    client_id: str | None = None  # None: whichever installed app registered the code


@dataclass
class RobotRun:
    """One robot invocation and what the app sent back (`bizproc.event.send`, `bizproc.activity.log`)."""

    id: int
    rule_id: int
    client_id: str
    code: str
    workflow_id: str
    event_token: str
    document_id: list[str]
    properties: dict
    use_subscription: bool
    status: str = "queued"  # queued | waiting | completed | delivered | failed
    return_values: dict | None = None
    log: list[str] = field(default_factory=list)
    delivery_id: int | None = None
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rule_id": self.rule_id, "client_id": self.client_id, "code": self.code,
                "workflow_id": self.workflow_id, "document_id": self.document_id,
                "properties": self.properties, "use_subscription": self.use_subscription,
                "status": self.status, "return_values": self.return_values, "log": list(self.log),
                "delivery_id": self.delivery_id}


@dataclass
class Callbacks:
    """Per-portal state of the portal-to-app side: rules, robot runs and delivery faults."""

    portal: PortalState
    rules: list[AutomationRule] = field(default_factory=list)
    runs: list[RobotRun] = field(default_factory=list)
    drop_share: float = 0.0
    delay_share: float = 0.0
    delay_seconds: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def new_application_token() -> str:
    return secrets.token_hex(16)
