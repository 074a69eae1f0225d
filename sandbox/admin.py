"""Admin API under `/sandbox/`: everything a test or `make run` scripts (JSON in, JSON out).

Every operation is a plain function in `OPS`, called with keyword arguments taken from the JSON body
(or the query string). `POST /sandbox/<op>` runs it over HTTP; `sandbox.client.Portal` runs the same
functions in-process, so both transports answer identically. Errors are JSON
``{"error": code, "error_description": text}`` with a 4xx status, never a traceback.
"""
from __future__ import annotations

import json
import logging
import secrets
from typing import Any, Callable

from flask import Blueprint, Response, current_app, request

from . import lifecycle
from .core import PortalState, Sandbox
from .errors import RestError
from .lifecycle import LifecycleError, deliverer
from .registry import Caller

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/sandbox")
OPS: dict[str, Callable[..., Any]] = {}


def op(fn: Callable[..., Any]) -> Callable[..., Any]:
    OPS[fn.__name__] = fn
    return fn


def _portal(sandbox: Sandbox, member_id: str | None) -> PortalState:
    if member_id:
        portal = sandbox.portals.get(member_id)
    else:
        portal = next(iter(sandbox.portals.values()), None)
    if portal is None:
        raise LifecycleError("PORTAL_NOT_FOUND", f"Portal {member_id or '(default)'} not found", 404)
    lifecycle.attach(portal)
    return portal


def as_bool(value: Any) -> bool:
    """Booleans from JSON or a query string ("1", "0", "Y", "N", "true", "false")."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "y", "yes", "true")
    return bool(value)


def portal_info(p: PortalState) -> dict[str, Any]:
    return {"member_id": p.member_id, "domain": p.domain, "plan": p.plan, "client_endpoint": p.client_endpoint,
            "old_domains": list(p.old_domains), "deleted": p.deleted, "payment_required": p.payment_required}


# -- portals ----------------------------------------------------------------------------------

@op
def limits(sandbox: Sandbox, member_id: str | None = None, reset: bool = False) -> dict:
    """The portal's limiter parameters, request counters (by method, 503s, 429s) and table sizes."""
    p = _portal(sandbox, member_id)
    if as_bool(reset):
        p.limiter.reset()
    sizes = {str(etid): len(p.crm.store(etid)) for etid in sorted(p.crm.kinds)} if hasattr(p.crm, "kinds") else {}
    return {"params": p.limiter.params(), "counters": p.limiter.counters(), "tables": sizes}


@op
def portals(sandbox: Sandbox) -> list:
    """Every portal of the sandbox."""
    return [portal_info(p) for p in sandbox.portals.values()]


def _serve_port(sandbox: Sandbox) -> int | None:
    """Start a server for one more portal when the sandbox is being served; returns its port."""
    app = getattr(sandbox, "wsgi_app", None)
    if app is None or not sandbox.base_url:
        return None
    from .server import ServerThread

    thread = ServerThread(app, sandbox.config.host, 0).start()
    servers = getattr(sandbox, "servers", None)
    if servers is None:
        servers = sandbox.servers = []
    servers.append(thread)
    return thread.port


@op
def create_portal(sandbox: Sandbox, plan: str = "standard", data_size: int = 0, domain: str | None = None) -> dict:
    """Create a portal (on a port of its own when served) with its CRM, limits and seeded data."""
    if plan not in ("standard", "enterprise"):
        raise LifecycleError("INVALID_PLAN", "plan must be standard or enterprise")
    if not domain:
        port = _serve_port(sandbox)
        domain = f"{sandbox.config.host}:{port}" if port else f"portal-{secrets.token_hex(3)}.sandbox"
    from . import run  # the one place a portal is born: CRM, limiter, seeded data, hooks

    portal = run.create_portal(sandbox, domain, int(data_size), plan=plan)
    lifecycle.attach(portal)
    return portal_info(portal)


@op
def set_portal_state(sandbox: Sandbox, member_id: str | None = None, deleted: bool | None = None,
                     payment_required: bool | None = None) -> dict:
    """Mark a portal deleted (PORTAL_DELETED) or its payment required (PAYMENT_REQUIRED)."""
    p = _portal(sandbox, member_id)
    if deleted is not None:
        p.deleted = as_bool(deleted)
    if payment_required is not None:
        p.payment_required = as_bool(payment_required)
    return portal_info(p)


@op
def change_domain(sandbox: Sandbox, member_id: str | None = None, domain: str | None = None) -> dict:
    """Move a portal to a new domain; the old one answers 302 to it (PROTOCOL.md §3.1)."""
    p = _portal(sandbox, member_id)
    if not domain:
        port = _serve_port(sandbox)
        if port is None:
            raise LifecycleError("ERROR_ARGUMENT", "domain is required when the sandbox is not served")
        domain = f"{sandbox.config.host}:{port}"
    with sandbox.lock:
        if sandbox.portal_by_domain(domain) is not None:
            raise LifecycleError("DOMAIN_TAKEN", f"{domain} already belongs to a portal")
        p.old_domains.append(p.domain)
        p.domain = domain
    return portal_info(p)


@op
def create_webhook(sandbox: Sandbox, member_id: str | None = None, user_id: int = 1,
                   scopes: list | None = None, code: str | None = None) -> dict:
    """Create an incoming webhook; returns its URL (`http://<portal>/rest/<user>/<code>/`)."""
    p = _portal(sandbox, member_id)
    hook = p.add_webhook(int(user_id), list(scopes or ["crm", "user", "department"]), code)
    return {"user_id": hook.user_id, "code": hook.code, "scopes": hook.scopes, "url": p.webhook_url(hook)}


ONUSERADD_FIELDS = ("ID", "ACTIVE", "EMAIL", "NAME", "LAST_NAME", "PERSONAL_GENDER", "PERSONAL_BIRTHDAY",
                    "UF_DEPARTMENT", "DATE_REGISTER", "WORK_POSITION", "UF_EMPLOYMENT_DATE")


@op
def add_user(sandbox: Sandbox, name: str, last_name: str = "", email: str = "", member_id: str | None = None,
             departments: list | None = None, is_admin: bool = False, work_position: str = "") -> dict:
    """A user who has just registered: added to the portal and announced with ONUSERADD (PROTOCOL.md §5.6)."""
    from datetime import datetime

    p = _portal(sandbox, member_id)
    users = getattr(p.crm, "users", None)
    if users is None:
        raise LifecycleError("NO_CRM", "This portal has no user directory")
    with p.lock:
        uid = max(users, default=0) + 1
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        user = {"ID": str(uid), "ACTIVE": True, "NAME": str(name), "LAST_NAME": str(last_name),
                "SECOND_NAME": "", "EMAIL": str(email), "LAST_LOGIN": now, "DATE_REGISTER": now, "TIME_ZONE": "",
                "IS_ONLINE": "Y", "PERSONAL_GENDER": "", "PERSONAL_BIRTHDAY": "", "WORK_POSITION": work_position,
                "UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [int(d) for d in (departments or [1])],
                "USER_TYPE": "employee", "IS_ADMIN": as_bool(is_admin)}
        users[uid] = user
        data = {k: user[k] for k in ONUSERADD_FIELDS}
        data["ACTIVE"] = "Y"
        p.bus.publish("user.added", user=data, caller=Caller(user_id=uid, scopes=["user"]))
    return {k: v for k, v in user.items() if k != "IS_ADMIN"}


@op
def expire_tokens(sandbox: Sandbox, member_id: str | None = None) -> dict:
    """Make every access token (of one portal, or all) expire now."""
    return {"count": sandbox.expire_access_tokens(member_id)}


# -- apps -------------------------------------------------------------------------------------

def _app_info(app) -> dict:
    return {"client_id": app.client_id, "client_secret": app.client_secret, "name": app.name,
            "handler_url": app.handler_url, "install_url": app.install_url, "scopes": list(app.scopes),
            "version": app.version}


@op
def register_app(sandbox: Sandbox, name: str = "App", handler_url: str = "", install_url: str = "",
                 scopes: list | str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, version: int = 1) -> dict:
    """Register a local app (client id and secret, app page URL, install URL, scopes)."""
    if isinstance(scopes, str):
        scopes = [s.strip() for s in scopes.split(",") if s.strip()]
    app = lifecycle.register_app(sandbox, name=name, handler_url=handler_url, install_url=install_url,
                                 scopes=scopes, client_id=client_id, client_secret=client_secret,
                                 version=int(version))
    return _app_info(app)


def installation_info(inst) -> dict:
    return {"client_id": inst.client_id, "member_id": inst.portal.member_id,
            "application_token": inst.application_token, "scopes": list(inst.scopes), "version": inst.version,
            "installed": inst.installed, "status": lifecycle.auth.status_of(inst),
            "handlers": [dict(h.as_result(), id=h.id) for h in inst.handlers],
            "placements": [{"placement": b.placement, "handler": b.handler, "title": b.title}
                           for b in inst.placements],
            "robots": {c: {"handler": r.handler, "use_subscription": r.use_subscription,
                           "properties": r.properties, "return_properties": r.return_properties}
                       for c, r in inst.robots.items()},
            "options": dict(inst.options), "offline_events": len(inst.offline_events)}


@op
def install(sandbox: Sandbox, client_id: str, member_id: str | None = None, user_id: int = 1,
            mode: str | None = None, language_id: str = "en", status: str = "") -> dict:
    """Install an app as an administrator: install frame POST ("frame") or ONAPPINSTALL ("event")."""
    out = lifecycle.install(_portal(sandbox, member_id), client_id, user_id=int(user_id), mode=mode,
                            language_id=language_id, status=status)
    return {"installation": installation_info(out["installation"]), "delivery": out["delivery"].as_dict()}


@op
def finish_install(sandbox: Sandbox, client_id: str, member_id: str | None = None) -> dict:
    """What `BX24.installFinish()` does: the installation is finished, events flow."""
    return installation_info(lifecycle.finish_install(_portal(sandbox, member_id), client_id))


@op
def update_app(sandbox: Sandbox, client_id: str, member_id: str | None = None, version: int | None = None) -> dict:
    """Install a new version: new application_token, ONAPPUPDATE to bound handlers."""
    p = _portal(sandbox, member_id)
    sent = lifecycle.update(p, client_id, version=None if version is None else int(version))
    return {"installation": installation_info(lifecycle.installation(p, client_id)),
            "deliveries": [d.as_dict() for d in sent]}


@op
def uninstall(sandbox: Sandbox, client_id: str, member_id: str | None = None, clean: bool = True) -> dict:
    """Uninstall: ONAPPUNINSTALL (data[CLEAN], no tokens) to bound handlers; all tokens die."""
    sent = lifecycle.uninstall(_portal(sandbox, member_id), client_id, clean=as_bool(clean))
    return {"deliveries": [d.as_dict() for d in sent]}


@op
def installation(sandbox: Sandbox, client_id: str, member_id: str | None = None) -> dict:
    """State of an installation: application_token, handlers, placements, robots, options."""
    return installation_info(lifecycle.installation(_portal(sandbox, member_id), client_id))


@op
def issue_tokens(sandbox: Sandbox, client_id: str, member_id: str | None = None, user_id: int = 1) -> dict:
    """A fresh token pair for an installed app, shaped as the OAuth server's token answer."""
    from . import oauth

    p = _portal(sandbox, member_id)
    inst = lifecycle.installation(p, client_id)
    access, refresh = sandbox.issue_tokens(p, client_id, int(user_id), list(inst.scopes))
    return oauth.token_response(sandbox, p, client_id, access, refresh)


@op
def authorize(sandbox: Sandbox, client_id: str, member_id: str | None = None, user_id: int = 1) -> dict:
    """An authorization code for the code flow, as the consent page would issue it (valid 30 s)."""
    from . import oauth

    p = _portal(sandbox, member_id)
    lifecycle.installation(p, client_id)
    return {"code": oauth.issue_code(sandbox, p, client_id, int(user_id)), "domain": p.domain,
            "member_id": p.member_id, "server_domain": oauth.server_domain(sandbox)}


# -- callbacks ----------------------------------------------------------------------------------

@op
def set_delivery_faults(sandbox: Sandbox, member_id: str | None = None, drop_share: float = 0.0,
                        delay_share: float = 0.0, delay_seconds: float = 1.0, seed: int | None = None) -> dict:
    """Drop or delay a share (0..1) of online event deliveries, chosen by a seeded generator."""
    values = [float(drop_share), float(delay_share), float(delay_seconds)]
    if not (0 <= values[0] <= 1 and 0 <= values[1] <= 1 and values[2] >= 0):
        raise LifecycleError("ERROR_ARGUMENT", "shares must be within 0..1 and delay_seconds >= 0")
    cb = lifecycle.callbacks(_portal(sandbox, member_id))
    cb.drop_share, cb.delay_share, cb.delay_seconds = values
    if seed is not None:
        cb.rng.seed(int(seed))
    return {"drop_share": cb.drop_share, "delay_share": cb.delay_share, "delay_seconds": cb.delay_seconds}


@op
def deliveries(sandbox: Sandbox, member_id: str | None = None, client_id: str | None = None,
               kind: str | None = None, event: str | None = None, since_id: int = 0) -> list:
    """Portal-to-app requests so far (events, installs, robots, frames) with their outcome."""
    with sandbox.lock:
        records = list(deliverer(sandbox).records)
    return [d.as_dict() for d in records
            if (not member_id or d.member_id == member_id) and (not client_id or d.client_id == client_id)
            and (not kind or d.kind == kind) and (not event or d.event == event.upper())
            and d.id > int(since_id)]


@op
def flush(sandbox: Sandbox, timeout: float = 30.0) -> dict:
    """Wait until every queued delivery (delayed ones too) has been attempted."""
    return {"done": deliverer(sandbox).flush(float(timeout))}


@op
def add_rule(sandbox: Sandbox, stage_id: str, robot_code: str, member_id: str | None = None,
             properties: dict | None = None, client_id: str | None = None) -> dict:
    """Automation rule: a deal entering `stage_id` runs robot `robot_code` with `properties`."""
    if properties is not None and not isinstance(properties, dict):
        raise LifecycleError("ERROR_ARGUMENT", "properties must be an object")
    rule = lifecycle.add_rule(_portal(sandbox, member_id), stage_id, robot_code, properties, client_id)
    return {"id": rule.id, "stage_id": rule.stage_id, "robot_code": rule.robot_code,
            "properties": rule.properties, "client_id": rule.client_id}


@op
def rules(sandbox: Sandbox, member_id: str | None = None) -> list:
    """The portal's automation rules."""
    return [{"id": r.id, "stage_id": r.stage_id, "robot_code": r.robot_code, "properties": r.properties,
             "client_id": r.client_id} for r in lifecycle.callbacks(_portal(sandbox, member_id)).rules]


@op
def delete_rule(sandbox: Sandbox, rule_id: int, member_id: str | None = None) -> dict:
    """Remove an automation rule."""
    return {"deleted": lifecycle.delete_rule(_portal(sandbox, member_id), int(rule_id))}


@op
def robot_runs(sandbox: Sandbox, member_id: str | None = None) -> list:
    """Robot invocations with their status and the values returned by `bizproc.event.send`."""
    return [r.as_dict() for r in lifecycle.callbacks(_portal(sandbox, member_id)).runs]


@op
def move_deal(sandbox: Sandbox, deal_id: int, stage_id: str, member_id: str | None = None,
              user_id: int | None = 1, category_id: int | None = None) -> dict:
    """Move a deal to a stage through the CRM (events and robots fire); `user_id` null = by automation."""
    from . import rest

    p = _portal(sandbox, member_id)
    fields: dict[str, Any] = {"STAGE_ID": stage_id}
    if category_id is not None:
        fields["CATEGORY_ID"] = int(category_id)
    if user_id is None and p.crm is not None and hasattr(p.crm, "update"):
        with p.lock:
            p.crm.update(2, int(deal_id), fields, None, True)  # no caller: the change is made by automation
    else:
        users = getattr(p.crm, "users", {}) or {}
        uid = int(user_id or 0)
        caller = Caller(user_id=uid, scopes=["crm"], is_admin=bool(users.get(uid, {}).get("IS_ADMIN", True)))
        rest.dispatch(p, "crm.deal.update", {"id": int(deal_id), "fields": fields}, caller)
    return {"deal_id": int(deal_id), "stage_id": stage_id}


def _bulk_ids(ids: Any) -> list[int]:
    if not isinstance(ids, list) or not ids:
        raise LifecycleError("ERROR_ARGUMENT", "ids must be a non-empty list of record ids")
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise LifecycleError("ERROR_ARGUMENT", "ids must be integers") from None


def _bulk_caller(p: PortalState, user_id: int | None) -> Caller | None:
    if user_id is None or int(user_id) == 0:
        return None  # by automation: events carry no user tokens
    users = getattr(p.crm, "users", {}) or {}
    uid = int(user_id)
    return Caller(user_id=uid, scopes=["crm"], is_admin=bool(users.get(uid, {}).get("IS_ADMIN", True)))


@op
def bulk_update(sandbox: Sandbox, entity_type_id: int, ids: list, fields: dict, member_id: str | None = None,
                user_id: int | None = 1) -> dict:
    """A mass change: `crm.item.update` of every id with `fields` (camelCase, as crm.item.update takes them).

    Each record changes exactly as a REST update changes it and fires the same events (one delivery per
    record and handler, queued, never inside this call). A string value may contain ``{id}``, replaced by
    the record's id (distinct titles). Ids the portal does not have are reported, not fatal. Request counters
    are not touched: this is the portal's users changing data, not an app calling the API.
    """
    p = _portal(sandbox, member_id)
    if not isinstance(fields, dict) or not fields:
        raise LifecycleError("ERROR_ARGUMENT", "fields must be a non-empty object")
    etid, wanted = int(entity_type_id), _bulk_ids(ids)
    if p.crm is None or etid not in getattr(p.crm, "kinds", {}):
        raise LifecycleError("NOT_FOUND", f"entity type {etid} not found")
    caller = _bulk_caller(p, user_id)
    from .crm.state import CrmError

    updated, missing = 0, []
    for rid in wanted:
        values = {k: (v.replace("{id}", str(rid)) if isinstance(v, str) else v) for k, v in fields.items()}
        with p.lock:
            try:
                p.crm.update(etid, rid, values, caller, False)
                updated += 1
            except CrmError:
                missing.append(rid)
    return {"updated": updated, "missing": missing}


@op
def bulk_delete(sandbox: Sandbox, entity_type_id: int, ids: list, member_id: str | None = None,
                user_id: int | None = 1) -> dict:
    """Delete every id as `crm.item.delete` does (events fire per record); unknown ids are reported."""
    p = _portal(sandbox, member_id)
    etid, wanted = int(entity_type_id), _bulk_ids(ids)
    if p.crm is None or etid not in getattr(p.crm, "kinds", {}):
        raise LifecycleError("NOT_FOUND", f"entity type {etid} not found")
    caller = _bulk_caller(p, user_id)
    from .crm.state import CrmError

    deleted, missing = 0, []
    for rid in wanted:
        with p.lock:
            try:
                p.crm.delete(etid, rid, caller)
                deleted += 1
            except CrmError:
                missing.append(rid)
    return {"deleted": deleted, "missing": missing}


@op
def open_placement(sandbox: Sandbox, client_id: str, placement: str = "DEFAULT", member_id: str | None = None,
                   options: Any = None, user_id: int = 1, handler: str | None = None, lang: str | None = None) -> dict:
    """Open the app page (DEFAULT) or a bound placement as a user: the frame POST and the app's answer."""
    d = lifecycle.open_frame(_portal(sandbox, member_id), client_id, placement=str(placement).upper(),
                             options=options, user_id=int(user_id), handler=handler, lang=lang)
    return d.as_dict()


# -- HTTP -------------------------------------------------------------------------------------

def run_op(sandbox: Sandbox, name: str, params: dict) -> Any:
    """Run admin operation `name`; raises RestError (with a status) for unknown ops or bad input."""
    fn = OPS.get(name)
    if fn is None:
        raise RestError(404, "ERROR_METHOD_NOT_FOUND", f"Unknown admin operation {name}")
    try:
        return fn(sandbox, **params)
    except TypeError as exc:
        raise RestError(400, "ERROR_ARGUMENT", f"Bad parameters for {name}: {exc}") from None
    except (ValueError, KeyError) as exc:
        raise RestError(400, "ERROR_ARGUMENT", f"Bad value for {name}: {exc}") from None


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status, mimetype="application/json")


@bp.route("/<name>", methods=["GET", "POST"])
def admin_op(name: str) -> Response:
    """`/sandbox/<op>`: JSON body (or query string) as keyword arguments."""
    sandbox: Sandbox = current_app.config["SANDBOX"]
    if getattr(sandbox, "wsgi_app", None) is None:
        sandbox.wsgi_app = current_app._get_current_object()
    params: dict[str, Any] = dict(request.args.items())
    if request.data:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json({"error": "ERROR_ARGUMENT", "error_description": "Body must be a JSON object"}, 400)
        params.update(body)
    try:
        return _json(run_op(sandbox, name, params))
    except RestError as exc:
        return _json(exc.body(), exc.status if exc.status >= 400 else 400)
    except Exception:  # noqa: BLE001 - answer like an API, log the bug
        log.exception("admin operation %s failed", name)
        return _json({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}, 500)
