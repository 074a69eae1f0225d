"""Bring a portal in line with manifest.json: bind what is missing, update what changed, remove what is stale.

The portal is asked what Hub24 has registered (`event.get`, `placement.get`, `bizproc.robot.list`) and the
difference to the manifest is applied. Running it again right after changes nothing. Robot fields cannot be
read back (`bizproc.robot.list` returns codes), so a fingerprint of what was registered is kept in
`Portal.registered["robots"]`; a robot whose declaration changed is updated with `bizproc.robot.update`.

Offline event bindings ("offline where the plan allows") are attempted; a portal that refuses them (plan,
rights) is reported under `skipped` and the online handler still covers the event.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app

from ..db import db_session
from ..manifest import load_manifest
from ..models import ConnectionKind, Portal
from .errors import BitrixError, MethodError, NotAvailableForWebhook, ScopeMissing

log = logging.getLogger("hub24.reconcile")


class Caller(Protocol):
    def call(self, method: str, params: dict | None = None) -> Any: ...


@dataclass
class ReconcileReport:
    """What one reconcile run did; `changed` is False when the portal already matched."""

    bound: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.bound or self.updated or self.removed)

    def as_dict(self) -> dict[str, list[str]]:
        return {"bound": self.bound, "updated": self.updated, "removed": self.removed, "skipped": self.skipped}


def handler_url(path: str) -> str:
    """The absolute URL the portal should call for a manifest handler path."""
    return current_app.config["APP_BASE_URL"].rstrip("/") + path


def _result(value: Any) -> Any:
    if hasattr(value, "result"):
        return value.result
    if isinstance(value, dict) and "result" in value and "time" in value:
        return value["result"]
    return value


def _lang_all(item: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for lang, title in item["title"].items():
        out[lang] = {"TITLE": title}
        if item.get("description", {}).get(lang):
            out[lang]["DESCRIPTION"] = item["description"][lang]
    return out


def robot_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """`bizproc.robot.add` fields for a manifest robot (without CODE)."""
    fields: dict[str, Any] = {
        "HANDLER": handler_url(spec["handler"]),
        "USE_SUBSCRIPTION": "Y" if spec.get("use_subscription", True) else "N",
        "NAME": spec["name"],
        "DOCUMENT_TYPE": spec["document_type"],
        "PROPERTIES": spec.get("properties", {}),
        "RETURN_PROPERTIES": spec.get("return_properties", {}),
    }
    if spec.get("description"):
        fields["DESCRIPTION"] = spec["description"]
    return fields


def fingerprint(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _client(portal_id: int) -> Caller:
    from .client import client_for

    return client_for(portal_id)


def reconcile(portal_id: int, client: Caller | None = None, manifest: dict[str, Any] | None = None) -> ReconcileReport:
    """Make portal `portal_id`'s events, placements and robots match the manifest; returns what changed.

    Raises NotAvailableForWebhook for a webhook-connected portal, LookupError for an unknown one, and the
    gateway's BitrixError subclasses (AuthLost, RateLimited...) when the portal cannot be read.
    """
    session = db_session()
    portal = session.get(Portal, portal_id)
    if portal is None or not portal.is_installed:
        raise LookupError(f"portal {portal_id} is not installed")
    if portal.connection_kind == ConnectionKind.webhook:
        raise NotAvailableForWebhook("", "events, placements and robots need Hub24 installed as an application; "
                                         "this portal is connected by an incoming webhook")
    manifest = manifest or load_manifest()
    client = client or _client(portal_id)
    report = ReconcileReport()
    _events(client, manifest, report)
    _placements(client, manifest, report)
    registered = dict(portal.registered or {})
    registered["robots"] = _robots(client, manifest, dict(registered.get("robots") or {}), report)
    portal.registered = registered
    session.commit()
    log.info("portal reconciled", extra={"portal_id": portal_id, **{k: len(v) for k, v in report.as_dict().items()}})
    return report


def _events(client: Caller, manifest: dict[str, Any], report: ReconcileReport) -> None:
    want_online = {(e["event"], handler_url(e["handler"])) for e in manifest["events"]}
    want_offline = {e["event"] for e in manifest["events"] if e.get("offline")}
    have = _result(client.call("event.get", {})) or []
    have_online, have_offline = set(), set()
    for h in have:
        name = str(h.get("event", "")).upper()
        if str(h.get("offline", "0")) in ("1", "true", "True"):
            have_offline.add(name)
        else:
            have_online.add((name, str(h.get("handler", ""))))
    for name, url in sorted(have_online - want_online):
        client.call("event.unbind", {"event": name, "handler": url})
        report.removed.append(f"event {name} -> {url}")
    for name in sorted(have_offline - want_offline):
        client.call("event.unbind", {"event": name, "event_type": "offline"})
        report.removed.append(f"offline event {name}")
    for name, url in sorted(want_online - have_online):
        client.call("event.bind", {"event": name, "handler": url})
        report.bound.append(f"event {name}")
    for name in sorted(want_offline - have_offline):
        try:
            client.call("event.bind", {"event": name, "event_type": "offline"})
            report.bound.append(f"offline event {name}")
        except (MethodError, ScopeMissing) as exc:  # plan or rights do not allow offline events
            report.skipped.append(f"offline event {name}: {exc.code or exc.description}")


def _placements(client: Caller, manifest: dict[str, Any], report: ReconcileReport) -> None:
    want = {(p["placement"], handler_url(p["handler"])): p for p in manifest["placements"]}
    have = {}
    for b in _result(client.call("placement.get", {})) or []:
        have[(str(b.get("placement", "")).upper(), str(b.get("handler", "")))] = b
    for code, url in sorted(set(have) - set(want)):
        client.call("placement.unbind", {"PLACEMENT": code, "HANDLER": url})
        report.removed.append(f"placement {code} -> {url}")
    for key, spec in sorted(want.items()):
        code, url = key
        params = {"PLACEMENT": code, "HANDLER": url, "TITLE": spec["title"]["en"], "LANG_ALL": _lang_all(spec)}
        if spec.get("description", {}).get("en"):
            params["DESCRIPTION"] = spec["description"]["en"]
        if spec.get("options"):
            params["OPTIONS"] = spec["options"]
        current = have.get(key)
        if current is not None:
            if current.get("title") == params["TITLE"] and (current.get("langAll") or {}) == params["LANG_ALL"]:
                continue
            client.call("placement.unbind", {"PLACEMENT": code, "HANDLER": url})
            client.call("placement.bind", params)
            report.updated.append(f"placement {code}")
        else:
            client.call("placement.bind", params)
            report.bound.append(f"placement {code}")


def _robots(client: Caller, manifest: dict[str, Any], known: dict[str, str], report: ReconcileReport) -> dict[str, str]:
    have = {str(c) for c in (_result(client.call("bizproc.robot.list", {})) or [])}
    want = {r["code"]: robot_fields(r) for r in manifest["robots"]}
    out: dict[str, str] = {}
    for code in sorted(have - set(want)):
        client.call("bizproc.robot.delete", {"CODE": code})
        report.removed.append(f"robot {code}")
    for code, fields in sorted(want.items()):
        fp = fingerprint(fields)
        if code not in have:
            client.call("bizproc.robot.add", {"CODE": code, **fields})
            report.bound.append(f"robot {code}")
        elif known.get(code) != fp:
            client.call("bizproc.robot.update", {"CODE": code, "FIELDS": fields})
            report.updated.append(f"robot {code}")
        out[code] = fp
    return out


def reconcile_portal(portal_id: int) -> dict[str, list[str]]:
    """Job (queue `maintenance`): reconcile one portal; errors raise so RQ retries."""
    try:
        return reconcile(portal_id).as_dict()
    except LookupError:
        log.info("reconcile skipped: portal not installed", extra={"portal_id": portal_id})
        return {}


__all__ = ["BitrixError", "ReconcileReport", "reconcile", "reconcile_portal", "robot_fields", "handler_url"]
