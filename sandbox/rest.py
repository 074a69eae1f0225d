"""The portal REST API: `/rest/<method>[.json]`, webhooks, `batch`, the envelope and `time` block.

`dispatch()` runs one method in-process (no HTTP) with the same checks as the HTTP route: scopes,
auth type, admin rights, the operating-time budget and the cost model. The HTTP route adds what
belongs to a request: portal by Host header, redirects from old domains, decoding of query/form/JSON
bodies with PHP bracket keys, authentication, and the leaky bucket (a batch is one request).
"""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Blueprint, Response, current_app, redirect, request

from . import errors
from .core import PortalState, Sandbox
from . import crm  # noqa: F401 - registers the CRM, user and system methods
from .crm.fields import TZ
from .crm.state import CrmError
from .errors import RestError
from .limits import BASE_COST
from .registry import Call, Caller, Page, lookup

log = logging.getLogger("sandbox.rest")
bp = Blueprint("rest", __name__)
BATCH_MAX = 50
SCOPE_ALIASES = {"user": {"user", "user_brief", "user_basic"}}
_REF = re.compile(r"\$(result|result_error|result_total|result_next)((?:\[[^\]]*\])+)")


# -- parameter decoding -----------------------------------------------------------------------

def php_nest(pairs: list[tuple[str, Any]]) -> dict:
    """Decode PHP bracket keys (``fields[PHONE][0][VALUE]=1``, ``id[]=1``) into nested dicts/lists."""
    root: dict = {}
    for key, value in pairs:
        m = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", key)
        if not m:
            root[key] = value
            continue
        parts = [m.group(1)] + re.findall(r"\[([^\]]*)\]", m.group(2))
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(sum(1 for k in node if str(k).isdigit()))
            if last:
                node[part] = value
            else:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = node[part] = {}
                node = nxt
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(str(k).isdigit() for k in node) and \
                sorted(int(k) for k in node) == list(range(len(node))):
            return [node[k] for k in sorted(node, key=int)]
    return node


def request_params() -> dict:
    """Merge the query string with a form, multipart or JSON body. Raises RestError on a bad body."""
    params = php_nest(list(request.args.items(multi=True)))
    ctype = (request.mimetype or "").lower()
    if ctype == "application/json" or (request.data and request.data.lstrip()[:1] in (b"{", b"[")
                                       and ctype not in ("application/x-www-form-urlencoded",
                                                         "multipart/form-data")):
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise RestError(400, "INVALID_REQUEST", "Request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise RestError(400, "INVALID_REQUEST", "Request body must be a JSON object")
            params.update(body)
    elif request.form:
        params.update(php_nest(list(request.form.items(multi=True))))
    return params


# -- envelope ---------------------------------------------------------------------------------

def time_block(start: float, processing: float, operating: float | None = None,
               reset_at: int | None = None) -> dict:
    """The `time` object of every answer."""
    finish = max(time.time(), start + processing)
    block = {
        "start": start, "finish": finish, "duration": finish - start, "processing": processing,
        "date_start": datetime.fromtimestamp(start, TZ).isoformat(timespec="seconds"),
        "date_finish": datetime.fromtimestamp(finish, TZ).isoformat(timespec="seconds"),
    }
    if operating is not None:
        block["operating_reset_at"] = reset_at if reset_at is not None else int(start) + 600
        block["operating"] = operating
    return block


def dispatch(portal: PortalState, method: str, params: dict, caller: Caller, in_batch: bool = False) -> dict:
    """Run one REST method and return its envelope (`result`, `total`, `next`, `time`).

    Raises RestError for every documented failure (unknown method, scope, auth type, admin rights,
    operating-time limit, method errors). Usable without HTTP (S2's Python API, tests).
    """
    start = time.time()
    name = method.lower()
    if name.endswith(".json") or name.endswith(".xml"):
        name = name.rsplit(".", 1)[0]
    if name == "batch":
        if in_batch:
            raise RestError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
        return run_batch(portal, params, caller)
    spec = lookup(name)
    if spec is None:
        raise errors.method_not_found(name)
    if spec.scope and not (SCOPE_ALIASES.get(spec.scope, {spec.scope}) & set(caller.scopes)):
        raise errors.insufficient_scope()
    if spec.app_only and not caller.is_app:
        raise RestError(403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
    if spec.admin_only and not caller.is_admin:
        raise errors.access_denied("Access denied! Administrator authorization required")
    limiter = portal.limiter
    if limiter is not None and not limiter.check_operating(name, caller.budget_key):
        raise errors.operation_time_limit(name)
    call = Call(portal=portal, caller=caller, params=params, method=name, in_batch=in_batch)
    try:
        with portal.lock:
            result = spec.fn(call)
    except CrmError as exc:
        raise RestError(exc.status, exc.code, exc.description) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # malformed parameters that slipped past a handler's checks: a 400, never a traceback
        log.info("bad input to %s: %r", name, exc)
        raise RestError(400, "ERROR_ARGUMENT", f"Invalid parameters: {exc}") from None
    cost = call.cost if call.cost is not None else (spec.cost(call, result) if spec.cost else BASE_COST)
    operating, reset_at = None, None
    if limiter is not None:
        limiter.charge(name, caller.budget_key, cost)
        limiter.sleep_for(cost)
        operating, reset_at = limiter.operating(name, caller.budget_key)
    body: dict[str, Any] = {}
    if isinstance(result, Page):
        body["result"] = result.items
        body["total"] = result.total if result.total is not None else 0
        if result.total is not None and result.next is not None:
            body["next"] = result.next
    else:
        body["result"] = result
    body["time"] = time_block(start, cost, operating if operating is not None else 0.0, reset_at)
    return body


# -- batch ------------------------------------------------------------------------------------

def _resolve(results: dict, kind: str, path: str, store: dict) -> tuple[bool, Any]:
    keys = re.findall(r"\[([^\]]*)\]", path)
    node: Any = store[kind]
    for k in keys:
        if isinstance(node, dict) and k in node:
            node = node[k]
        elif isinstance(node, dict) and k.isdigit() and int(k) in node:
            node = node[int(k)]
        elif isinstance(node, list) and k.isdigit() and int(k) < len(node):
            node = node[int(k)]
        else:
            return False, ""
    return True, node


def _substitute(value: str, store: dict) -> Any:
    whole = _REF.fullmatch(value)
    if whole:
        return _resolve({}, whole.group(1), whole.group(2), store)[1]

    def repl(m: re.Match) -> str:
        ok, v = _resolve({}, m.group(1), m.group(2), store)
        return "" if not ok or isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v)
    return _REF.sub(repl, value)


def _php_array(d: dict) -> Any:
    if not d:
        return []
    if all(isinstance(k, int) for k in d) and sorted(d) == list(range(len(d))):
        return [d[k] for k in sorted(d)]
    return {str(k): v for k, v in d.items()}


def run_batch(portal: PortalState, params: dict, caller: Caller) -> dict:
    """Run up to 50 commands in order; per-command errors go to `result_error` (always HTTP 200)."""
    start = time.time()
    cmd = next((v for k, v in params.items() if k.lower() == "cmd"), None)
    halt_raw = next((v for k, v in params.items() if k.lower() == "halt"), 0)
    halt = str(halt_raw).lower() in ("1", "true", "y")
    if isinstance(cmd, list):
        cmd = dict(enumerate(cmd))
    if not isinstance(cmd, dict) or not cmd:
        raise RestError(400, "ERROR_ARGUMENT", "Parameter 'cmd' must be a non-empty array of commands")
    if len(cmd) > BATCH_MAX:
        raise RestError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    store: dict[str, dict] = {"result": {}, "result_error": {}, "result_total": {}, "result_next": {},
                              "result_time": {}}
    for raw_key, command in cmd.items():
        key = int(raw_key) if isinstance(raw_key, int) or str(raw_key).isdigit() else str(raw_key)
        try:
            if not isinstance(command, str) or not command.strip():
                raise RestError(400, "ERROR_ARGUMENT", "Batch command must be a string 'method?params'")
            method, _, query = command.strip().partition("?")
            pairs = [(k, _substitute(v, store)) for k, v in parse_qsl(query, keep_blank_values=True)]
            sub = php_nest(pairs)
            sub.pop("auth", None)
            out = dispatch(portal, method, sub, caller, in_batch=True)
        except RestError as exc:
            store["result_error"][key] = exc.body()
            if halt:
                break
            continue
        store["result"][key] = out["result"]
        if "total" in out:
            store["result_total"][key] = out["total"]
        if "next" in out:
            store["result_next"][key] = out["next"]
        store["result_time"][key] = out["time"]
    result = {k: _php_array(v) for k, v in store.items()}
    return {"result": result, "time": time_block(start, sum(t["processing"] for t in store["result_time"].values()),
                                                 0.0, None)}


# -- HTTP -------------------------------------------------------------------------------------

def _sandbox() -> Sandbox:
    return current_app.config["SANDBOX"]


def _portal_for_host(sb: Sandbox, host: str) -> PortalState | None:
    p = sb.portal_by_domain(host)
    if p is None:
        port = host.rsplit(":", 1)[-1] if ":" in host else ""
        for cand in sb.portals.values():
            if port and cand.domain.rsplit(":", 1)[-1] == port and cand.domain.split(":")[0] in (
                    "127.0.0.1", "localhost", host.split(":")[0]):
                return cand
    return p


def _json(body: dict, status: int = 200) -> Response:
    # orjson: a list page of 2,500 records serialises ~8x faster, and the sandbox's own CPU is what benchmarks
    # running it beside Hub24 on one machine must keep small. The stdlib covers what orjson refuses (integers
    # past 64 bits echoed from a request, say); both print the same JSON values.
    try:
        data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        data = json.dumps(body, ensure_ascii=False).encode()
    return Response(data, status=status, mimetype="application/json")


def _authenticate(sb: Sandbox, portal: PortalState, params: dict, hook: tuple[str, str] | None) -> Caller:
    users = getattr(portal.crm, "users", {}) if portal.crm is not None else {}
    if hook is not None:
        try:
            wh = portal.webhooks.get((int(hook[0]), hook[1]))
        except ValueError:
            wh = None
        if wh is None:
            raise errors.no_auth()
        user = users.get(wh.user_id, {})
        return Caller(user_id=wh.user_id, scopes=list(wh.scopes), webhook_code=wh.code,
                      is_admin=bool(user.get("IS_ADMIN")))
    token = params.pop("auth", None) or request.headers.get("X-Auth-Token")
    if not token or not isinstance(token, str):
        raise errors.no_auth()
    at = sb.access_tokens.get(token)
    if at is None or at.member_id != portal.member_id:
        raise errors.no_auth()
    if at.expired:
        raise errors.expired_token()
    user = users.get(at.user_id, {})
    return Caller(user_id=at.user_id, scopes=list(at.scopes), client_id=at.client_id,
                  is_admin=bool(user.get("IS_ADMIN")))


def _serve(method: str, hook: tuple[str, str] | None = None) -> Response:
    sb = _sandbox()
    host = request.host
    portal = _portal_for_host(sb, host)
    if portal is None:
        moved = sb.portal_by_old_domain(host)
        if moved is not None:
            target = f"http://{moved.domain}{request.full_path.rstrip('?')}"
            return redirect(target, code=302)
        return _json({"error": "NO_AUTH_FOUND", "error_description": f"Portal {host} not found"}, 401)
    try:
        if portal.deleted:
            raise RestError(500, "PORTAL_DELETED", "Portal was deleted")
        if portal.payment_required:
            raise RestError(401, "PAYMENT_REQUIRED", "Payment required")
        if portal.limiter is not None:
            if not portal.limiter.admit():
                raise errors.query_limit()
            portal.limiter.sleep_latency()
            portal.limiter.count_request(method)
        params = request_params()
        caller = _authenticate(sb, portal, params, hook)
        return _json(dispatch(portal, method, params, caller))
    except RestError as exc:
        return _json(exc.body(), exc.status)
    except Exception:  # noqa: BLE001 - a sandbox bug must still answer like Bitrix24, never a traceback
        log.exception("REST method %s failed", method)
        return _json({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}, 500)


@bp.route("/rest/<method>", methods=["GET", "POST"])
@bp.route("/rest/<method>/", methods=["GET", "POST"])
def rest_method(method: str) -> Response:
    return _serve(method)


@bp.route("/rest/<user_id>/<code>/<method>", methods=["GET", "POST"])
@bp.route("/rest/<user_id>/<code>/<method>/", methods=["GET", "POST"])
def rest_webhook(user_id: str, code: str, method: str) -> Response:
    return _serve(method, (user_id, code))
