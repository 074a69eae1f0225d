"""Bring a portal in line with manifest.json: bind what is missing, update what changed, remove what is stale.

The portal is asked what Hub24 has registered (`event.get`, `placement.get`, `bizproc.robot.list`) and the
difference to the manifest is applied. Running it again right after changes nothing. Robot fields cannot be
read back (`bizproc.robot.list` returns codes), so a fingerprint of what was registered is kept in
`Portal.registered["robots"]`; a robot whose declaration changed is updated with `bizproc.robot.update`.

The same read asks the portal's `app.info`, whose LICENSE_FAMILY says which request-rate limit applies
(Enterprise or standard); it is kept as `Portal.plan` for the gateway's leaky bucket.

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
from .errors import BitrixError, MethodError, NotAvailableForWebhook
from .ratelimit import UNLIMITED

log = logging.getLogger("hub24.reconcile")


class Caller(Protocol):
    """What reconcile needs of the gateway (`app.bitrix.client.PortalClient`)."""

    def batch_raw(self, commands: dict, halt: bool = False) -> Any: ...


@dataclass(frozen=True)
class Change:
    """One registration call: `kind` is bound/updated/removed; `optional` failures are reported, not raised."""

    kind: str
    label: str
    method: str
    params: dict[str, Any]
    optional: bool = False


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


def _read(client: Caller) -> tuple[list, list, list, dict]:
    """What Hub24 has registered in the portal, and the portal's `app.info`, in one batch request.

    A failing `app.info` only costs the plan check (its answer comes back as {}); the others are needed.
    """
    out = client.batch_raw({"events": ("event.get", {}), "placements": ("placement.get", {}),
                            "robots": ("bizproc.robot.list", {}), "app": ("app.info", {})})
    errors = {k: v for k, v in out.errors.items() if k != "app"}
    if errors:
        key, err = next(iter(errors.items()))
        raise MethodError(str(err.get("error", "")), str(err.get("error_description", "")), method=str(key))
    as_list = lambda v: list(v.values()) if isinstance(v, dict) else list(v or [])  # noqa: E731  PHP [] vs {}
    info = out.result.get("app")
    return (as_list(out.result.get("events")), as_list(out.result.get("placements")),
            as_list(out.result.get("robots")), info if isinstance(info, dict) else {})


def plan_from_license(info: dict[str, Any], current: str | None) -> str:
    """The rate-limit plan `app.info` implies: LICENSE_FAMILY ``ent`` is Enterprise (5/s, 250), any other
    family the standard limits (2/s, 50). An administrator's ``unlimited`` (on-premise) is kept, and so is
    the current plan when `app.info` said nothing."""
    family = str(info.get("LICENSE_FAMILY") or "").strip().lower()
    if current == UNLIMITED or not family:
        return current or "standard"
    return "enterprise" if family == "ent" else "standard"


def plan(manifest: dict[str, Any], events: list, placements: list, robots: list,
         known_robots: dict[str, str]) -> tuple[list[Change], dict[str, str]]:
    """The calls that bring the registrations in line with `manifest`, and the robot fingerprints after them."""
    changes = _event_changes(manifest, events) + _placement_changes(manifest, placements)
    robot_changes, fingerprints = _robot_changes(manifest, robots, known_robots)
    return changes + robot_changes, fingerprints


def reconcile(portal_id: int, client: Caller | None = None, manifest: dict[str, Any] | None = None, *,
              dry_run: bool = False) -> ReconcileReport:
    """Make portal `portal_id`'s events, placements and robots match the manifest; returns what changed.

    One batch request reads the registrations, and batches of 50 apply the difference (two requests for a
    fresh install). With `dry_run` the portal is only read: the report says what a real run would change.
    Raises NotAvailableForWebhook for a webhook-connected portal, LookupError for an unknown one,
    MethodError when a registration is refused, and the gateway's BitrixError subclasses (AuthLost,
    RateLimited...) when the portal cannot be reached.
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
    registered = dict(portal.registered or {})
    events, placements, robots, info = _read(client)
    changes, fingerprints = plan(manifest, events, placements, robots, dict(registered.get("robots") or {}))
    report = ReconcileReport()
    failed: dict[str, str] = {} if dry_run else _apply(client, changes)
    for ch in changes:
        if ch.label in failed:
            report.skipped.append(f"{ch.label}: {failed[ch.label]}")
        elif ch.kind != "unbind-for-update":
            getattr(report, ch.kind).append(ch.label)
    if dry_run:
        return report
    registered["robots"] = fingerprints
    portal.registered = registered
    rate_plan = plan_from_license(info, portal.plan)
    if rate_plan != portal.plan:
        log.info("portal plan from app.info", extra={"portal_id": portal_id, "plan": rate_plan})
        portal.plan = rate_plan
    session.commit()
    log.info("portal reconciled", extra={"portal_id": portal_id, **{k: len(v) for k, v in report.as_dict().items()}})
    return report


def _apply(client: Caller, changes: list[Change]) -> dict[str, str]:
    """Send `changes` in batches of 50 (in order); returns labels of optional changes the portal refused."""
    skipped: dict[str, str] = {}
    for i in range(0, len(changes), 50):
        chunk = changes[i:i + 50]
        out = client.batch_raw({n: (ch.method, ch.params) for n, ch in enumerate(chunk)})
        for n, err in sorted(out.errors.items(), key=lambda kv: int(kv[0])):
            ch = chunk[int(n)]
            code, text_ = str(err.get("error", "")), str(err.get("error_description", ""))
            if not ch.optional:
                raise MethodError(code, f"{ch.label}: {text_}", method=ch.method)
            skipped[ch.label] = code or text_
    return skipped


def _event_changes(manifest: dict[str, Any], have: list) -> list[Change]:
    want_online = {(e["event"], handler_url(e["handler"])) for e in manifest["events"]}
    want_offline = {e["event"] for e in manifest["events"] if e.get("offline")}
    have_online, have_offline = set(), set()
    for h in have:
        if not isinstance(h, dict):
            continue
        name = str(h.get("event", "")).upper()
        if str(h.get("offline", "0")) in ("1", "true", "True"):
            have_offline.add(name)
        else:
            have_online.add((name, str(h.get("handler", ""))))
    out = [Change("removed", f"event {n} -> {u}", "event.unbind", {"event": n, "handler": u})
           for n, u in sorted(have_online - want_online)]
    out += [Change("removed", f"offline event {n}", "event.unbind", {"event": n, "event_type": "offline"})
            for n in sorted(have_offline - want_offline)]
    out += [Change("bound", f"event {n}", "event.bind", {"event": n, "handler": u})
            for n, u in sorted(want_online - have_online)]
    # offline events need an administrator and, for some uses, a plan feature: refused ones are skipped
    out += [Change("bound", f"offline event {n}", "event.bind", {"event": n, "event_type": "offline"}, optional=True)
            for n in sorted(want_offline - have_offline)]
    return out


def _placement_changes(manifest: dict[str, Any], bindings: list) -> list[Change]:
    want = {(p["placement"], handler_url(p["handler"])): p for p in manifest["placements"]}
    have = {(str(b.get("placement", "")).upper(), str(b.get("handler", ""))): b for b in bindings if isinstance(b, dict)}
    out = [Change("removed", f"placement {c} -> {u}", "placement.unbind", {"PLACEMENT": c, "HANDLER": u})
           for c, u in sorted(set(have) - set(want))]
    for (code, url), spec in sorted(want.items()):
        params = {"PLACEMENT": code, "HANDLER": url, "TITLE": spec["title"]["en"], "LANG_ALL": _lang_all(spec)}
        if spec.get("description", {}).get("en"):
            params["DESCRIPTION"] = spec["description"]["en"]
        if spec.get("options"):
            params["OPTIONS"] = spec["options"]
        current = have.get((code, url))
        if current is None:
            out.append(Change("bound", f"placement {code}", "placement.bind", params))
        elif current.get("title") != params["TITLE"] or (current.get("langAll") or {}) != params["LANG_ALL"]:
            out.append(Change("unbind-for-update", f"placement {code} (old)", "placement.unbind",
                              {"PLACEMENT": code, "HANDLER": url}))
            out.append(Change("updated", f"placement {code}", "placement.bind", params))
    return out


def _robot_changes(manifest: dict[str, Any], codes: list, known: dict[str, str]) -> tuple[list[Change], dict[str, str]]:
    have = {str(c) for c in codes}
    want = {r["code"]: robot_fields(r) for r in manifest["robots"]}
    out = [Change("removed", f"robot {c}", "bizproc.robot.delete", {"CODE": c}) for c in sorted(have - set(want))]
    fingerprints: dict[str, str] = {}
    for code, fields in sorted(want.items()):
        fp = fingerprints[code] = fingerprint(fields)
        if code not in have:
            out.append(Change("bound", f"robot {code}", "bizproc.robot.add", {"CODE": code, **fields}))
        elif known.get(code) != fp:
            out.append(Change("updated", f"robot {code}", "bizproc.robot.update", {"CODE": code, "FIELDS": fields}))
    return out, fingerprints


def refresh_plans() -> dict[str, Any]:
    """Periodic job (queue `maintenance`): ask each installed app's portal for its `app.info`, so a portal that
    moved to or from Enterprise is paced for its new plan without waiting for the next reconcile.

    Webhook portals cannot ask (`app.info` needs an app) and keep what `flask portal plan` set. A portal
    that cannot be reached is skipped and reported; the others are still updated.
    """
    from sqlalchemy import select

    session = db_session()
    changed: dict[int, str] = {}
    failed: list[int] = []
    portals = session.scalars(select(Portal).where(Portal.connection_kind == ConnectionKind.oauth_app)).all()
    for portal in portals:
        if not portal.is_installed or portal.needs_reinstall:
            continue
        try:
            info = _client(portal.id).call("app.info", {})
        except BitrixError as exc:
            log.info("plan refresh skipped: %s", exc.code, extra={"portal_id": portal.id})
            failed.append(portal.id)
            continue
        plan = plan_from_license(info if isinstance(info, dict) else {}, portal.plan)
        if plan != portal.plan:
            portal.plan = plan
            changed[portal.id] = plan
    session.commit()
    return {"changed": changed, "failed": failed}


def reconcile_portal(portal_id: int) -> dict[str, list[str]]:
    """Job (queue `maintenance`): reconcile one portal; errors raise so RQ retries."""
    try:
        return reconcile(portal_id).as_dict()
    except LookupError:
        log.info("reconcile skipped: portal not installed", extra={"portal_id": portal_id})
        return {}


__all__ = ["BitrixError", "Change", "ReconcileReport", "plan", "plan_from_license", "refresh_plans", "reconcile", "reconcile_portal", "robot_fields", "handler_url"]
