"""`flask doctor [PORTAL]`: check a portal connection the way a support engineer would.

Checks, in order: stored state, reachable, auth valid, scopes granted versus the manifest, installation
finished, handlers/placements/robots bound (a read-only reconcile), rate and operating headroom (the
limiter and the `time` block), entity counts. Each finding is one line; a problem says what to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from ..db import db_session
from ..manifest import load_manifest
from ..models import ConnectionKind, Portal, PortalStatus
from .errors import AuthError, AuthLost, BitrixError, RateLimited, ScopeMissing, TransportError

COUNTED = (("deals", "crm.deal.list"), ("leads", "crm.lead.list"), ("contacts", "crm.contact.list"),
           ("companies", "crm.company.list"))


@dataclass(frozen=True)
class Finding:
    """One line of the report: `ok` False means a problem, and `text` says what to do."""

    check: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.text}"


def find(ref: str) -> Portal | None:
    """A portal by id, member_id or domain."""
    q = select(Portal)
    if ref.isdigit():
        return db_session().get(Portal, int(ref))
    return db_session().scalar(q.where(or_(Portal.member_id == ref, Portal.domain == ref.lower())))


def diagnose(portal_id: int) -> list[Finding]:
    """Every check for one portal, as findings. Never raises for portal-side problems."""
    from .client import client_for

    portal = db_session().get(Portal, portal_id)
    if portal is None:
        return [Finding("portal", False, f"no portal {portal_id}: connect one with `flask portal connect URL` "
                                          "or install Hub24 in the portal")]
    out: list[Finding] = []
    webhook = portal.connection_kind == ConnectionKind.webhook
    kind = "incoming webhook" if webhook else "installed app"
    out.append(Finding("portal", True, f"{portal.domain} (member {portal.member_id}, {kind}, status {portal.status.value})"))
    if portal.status == PortalStatus.uninstalled:
        return out + [Finding("installed", False, "Hub24 was uninstalled from this portal: install it again "
                                                   "from the portal's Applications page")]
    if portal.needs_reinstall or portal.status == PortalStatus.needs_reinstall:
        return out + [Finding("auth", False, f"authorisation lost ({portal.needs_reinstall_reason or 'unknown'}): "
                                             "reinstall Hub24 in the portal")]
    try:
        client = client_for(portal_id, interactive=True)
        env = client.call_raw("profile", {})
    except AuthLost as exc:
        return out + [Finding("auth", False, f"{exc.code}: {exc.description or 'authorisation lost'} — reinstall Hub24")]
    except AuthError as exc:
        return out + [Finding("auth", False, f"{exc.code}: the portal refused our credentials — "
                                             + ("create a new webhook and run `flask portal connect URL`" if webhook
                                                else "reinstall Hub24"))]
    except TransportError as exc:
        return out + [Finding("reachable", False, f"cannot reach {portal.domain} ({exc.code or exc.description}): "
                                                  "check the domain and the network")]
    except RateLimited as exc:
        return out + [Finding("reachable", False, f"rate limited right now ({exc.code}); try again in "
                                                  f"{exc.retry_after:.0f} s")]
    except BitrixError as exc:
        return out + [Finding("reachable", False, f"{exc.code or 'error'}: {exc.description}")]
    out.append(Finding("reachable", True, f"{portal.domain} answers"))
    profile = env.get("result") or {}
    out.append(Finding("auth", True, f"valid (user {profile.get('ID', '?')}"
                                     f"{', administrator' if profile.get('ADMIN') else ''})"))
    out.extend(_scopes(client))
    if webhook:
        out.append(Finding("events/robots/placements", True, "not available on a webhook connection (needs "
                                                              "Hub24 installed as an app); sync, charts and users work"))
    else:
        out.extend(_installation(client, portal))
        out.extend(_bindings(portal_id, client))
    out.extend(_headroom(client, env))
    out.extend(_counts(client))
    return out


def _scopes(client) -> list[Finding]:
    try:
        granted = set(client.call("scope", {}) or [])
    except BitrixError as exc:
        return [Finding("scopes", False, f"cannot read granted scopes ({exc.code})")]
    missing = [s for s in load_manifest()["scopes"] if s not in granted]
    if missing:
        return [Finding("scopes", False, f"missing scope {', '.join(missing)}: reinstall Hub24 (or recreate the "
                                         f"webhook) with {'it' if len(missing) == 1 else 'them'}")]
    return [Finding("scopes", True, "every scope of manifest.json is granted")]


def _installation(client, portal: Portal) -> list[Finding]:
    try:
        info = client.call("app.info", {}) or {}
    except BitrixError as exc:
        return [Finding("installation", False, f"app.info failed ({exc.code}): reinstall Hub24")]
    if not info.get("INSTALLED"):
        return [Finding("installation", False, "installation not finished: an administrator must open Hub24 in "
                                               "the portal once (its install page calls installFinish)")]
    if str(info.get("PAYMENT_EXPIRED", "N")) == "Y":
        return [Finding("installation", False, "the app's paid period has expired: renew it in the Market")]
    return [Finding("installation", True, f"finished (version {info.get('VERSION', '?')})")]


def _bindings(portal_id: int, client) -> list[Finding]:
    from .reconcile import reconcile

    try:
        plan = reconcile(portal_id, client, dry_run=True)
    except BitrixError as exc:
        return [Finding("handlers", False, f"cannot read handlers ({exc.code}): check the scopes above")]
    if plan.changed:
        what = ", ".join(plan.bound + plan.updated + plan.removed)
        return [Finding("handlers", False, f"not in line with manifest.json ({what}): run "
                                           f"`flask portal reconcile {portal_id}`")]
    note = f" ({'; '.join(plan.skipped)})" if plan.skipped else ""
    return [Finding("handlers", True, f"events, placements and robots match manifest.json{note}")]


def _headroom(client, env: dict[str, Any]) -> list[Finding]:
    out = []
    limiter = getattr(client, "limiter", None)
    if limiter is not None:
        limits = limiter.limits
        free = max(0.0, limits.capacity - _drained_level(limiter))
        ok = free >= limits.capacity * 0.2
        out.append(Finding("rate", ok, f"{free:.0f} of {limits.capacity:.0f} requests of burst free "
                                       f"(drains {limits.rate:g}/s)" + ("" if ok else ": other work is using the "
                                                                       "portal's budget; wait or spread the load")))
    t = env.get("time") or {}
    if "operating" in t:
        used = float(t.get("operating") or 0)
        budget = current_app.config.get("B24_OPERATING_BUDGET", 480.0)
        ok = used < budget * 0.8
        out.append(Finding("operating", ok, f"{used:.1f} s of ~{budget:.0f} s per 10 min used by `profile`"
                                            + ("" if ok else ": heavy use; it resets at operating_reset_at")))
    return out


def _drained_level(limiter) -> float:
    """The bucket's level drained to now (the limiter stores level and the time it was written)."""
    import time

    raw_ts = limiter.redis.hget(limiter.key, "ts")
    level = limiter.level()
    if raw_ts is None:
        return level
    return max(0.0, level - limiter.limits.rate * max(0.0, time.time() - float(raw_ts)))


def _counts(client) -> list[Finding]:
    parts, problems = [], []
    for label, method in COUNTED:
        try:
            env = client.call_raw(method, {"select": ["ID"], "start": 0})
            parts.append(f"{env.get('total', len(env.get('result') or []))} {label}")
        except ScopeMissing:
            problems.append(label)
        except BitrixError as exc:
            problems.append(f"{label} ({exc.code})")
    if problems:
        return [Finding("entities", False, f"cannot count {', '.join(problems)}: check the crm scope")]
    return [Finding("entities", True, ", ".join(parts))]
