"""user.get, user.current, user.admin, profile, department.get, scope, server.time.

Users are kept as the dicts `user.get` prints (``ID`` a string, ``ACTIVE`` a bool, ``UF_DEPARTMENT``
an int list) plus a private ``IS_ADMIN`` flag that is never printed.
"""
from __future__ import annotations

import time
from typing import Any

from ..errors import RestError
from ..registry import Call, Page, method
from .fields import fmt_time
from .legacy import crm_of, start_of
from .store import PAGE, _like, split_prefix

ALL_SCOPES = ["bizproc", "crm", "department", "entity", "im", "log", "placement", "task", "user",
              "user_basic", "user_brief", "basic"]
_PRIVATE = ("IS_ADMIN",)


def public_user(u: dict) -> dict:
    return {k: v for k, v in u.items() if k not in _PRIVATE}


def _matches(u: dict, key: str, value: Any) -> bool:
    prefix, name = split_prefix(key)
    name = name.upper()
    if name == "NAME_SEARCH":
        text = f"{u.get('NAME', '')} {u.get('LAST_NAME', '')} {u.get('EMAIL', '')}".lower()
        return all(w in text for w in str(value).lower().split())
    if name == "IS_ADMIN":
        return bool(u.get("IS_ADMIN")) == (str(value).upper() in ("Y", "1", "TRUE"))
    have = u.get(name)
    values = have if isinstance(have, list) else [have]
    neg = prefix.startswith("!")
    op = prefix.lstrip("!") or "="
    if name == "ACTIVE":
        want = str(value).upper() in ("Y", "1", "TRUE")
        return (bool(have) == want) != neg
    targets = value if isinstance(value, list) else [value]
    if op in ("%", "=%", "%="):
        pat = _like(str(value) if op != "%" else f"%{value}%")
        hit = any(v is not None and pat.match(str(v)) for v in values)
    elif op in ("=", "@"):
        hit = any(str(v) == str(t) for v in values for t in targets)
    else:
        def num(x: Any) -> Any:
            try:
                return float(x)
            except (TypeError, ValueError):
                return str(x)
        import operator
        fn = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}[op]
        try:
            hit = any(v not in (None, "") and fn(num(v), num(value)) for v in values)
        except TypeError:
            hit = False
    return hit != neg


_CONTROL = {"SORT", "ORDER", "ADMIN_MODE", "START", "SELECT", "FILTER", "IMAGE_RESIZE", "AUTH"}


@method("user.get", "user")
def user_get(call: Call) -> Page:
    flt = call.param("filter") or {}
    if not isinstance(flt, dict):
        raise RestError(400, "INVALID_FILTER", "Filter must be an object")
    flt = dict(flt)
    flt.update({k: v for k, v in call.params.items() if k.upper() not in _CONTROL and k != "auth"})
    users = [u for u in crm_of(call).users.values() if all(_matches(u, k, v) for k, v in flt.items())]
    sort = str(call.param("sort", "ID")).upper()
    desc = str(call.param("order", "ASC")).upper() == "DESC"

    def key(u: dict) -> tuple:
        v = u.get(sort)
        return (0, int(v)) if str(v).isdigit() else (1, str(v or "").lower())
    users.sort(key=key, reverse=desc)
    start = start_of(call)
    if start == -1:
        return Page([public_user(u) for u in users[:PAGE]], None)
    page = users[start:start + PAGE]
    nxt = start + PAGE if len(users) > start + PAGE else None
    return Page([public_user(u) for u in page], len(users), nxt)


def _me(call: Call) -> dict:
    u = crm_of(call).users.get(call.caller.user_id)
    if u is None:
        raise RestError(401, "NO_AUTH_FOUND", "Wrong authorization data")
    return u


@method("user.current", "user")
def user_current(call: Call) -> dict:
    return public_user(_me(call))


@method("user.admin")
def user_admin(call: Call) -> bool:
    return bool(_me(call).get("IS_ADMIN"))


@method("profile")
def profile(call: Call) -> dict:
    u = _me(call)
    return {"ID": u["ID"], "ADMIN": bool(u.get("IS_ADMIN")), "NAME": u.get("NAME", ""),
            "LAST_NAME": u.get("LAST_NAME", ""), "PERSONAL_GENDER": u.get("PERSONAL_GENDER", ""),
            "TIME_ZONE": u.get("TIME_ZONE", "")}


@method("department.get", "department")
def department_get(call: Call) -> Page:
    deps = list(crm_of(call).departments.values())
    for k, v in call.params.items():
        # `sort`/`order` (lower case) choose the ordering; the upper-case names filter (SORT is a field too).
        if k in ("sort", "order"):
            continue
        if k.upper() in ("ID", "NAME", "SORT", "PARENT", "UF_HEAD"):
            vals = v if isinstance(v, list) else [v]
            deps = [d for d in deps if str(d.get(k.upper(), "")) in {str(x) for x in vals}]
    sort = str(call.param("sort", "ID")).upper()
    desc = str(call.param("order", "ASC")).upper() == "DESC"
    deps.sort(key=lambda d: (int(d[sort]) if str(d.get(sort, "")).isdigit() else str(d.get(sort) or "")),
              reverse=desc)
    start = start_of(call)
    if start == -1:
        return Page([dict(d) for d in deps[:PAGE]], None)
    page = deps[start:start + PAGE]
    return Page([dict(d) for d in page], len(deps), start + PAGE if len(deps) > start + PAGE else None)


@method("scope")
def scope(call: Call) -> list:
    if str(call.param("full", "")).lower() in ("1", "true", "y"):
        return list(ALL_SCOPES)
    return list(call.caller.scopes)


@method("server.time")
def server_time(call: Call) -> str:
    return fmt_time(time.time())
