"""What Bitrix24 says about a portal's people: users (with who is an administrator) and departments.

Users come from `user.get` through the gateway's keyset paging (`list_all`: ascending ``ID``, ``>ID`` filter,
``start=-1``), with ``ADMIN_MODE`` so an administrator's token sees every user; a portal that refuses admin
mode is read without it (and the report says so).

Who is an administrator. Bitrix24 documents no user field for it: `user.admin` and `profile.ADMIN` answer
only for the token's own user, and `user.get` prints no admin flag. `user.get` does accept an ``IS_ADMIN``
filter (the sandbox implements it, and it is what the portal's user list filters by), but an unknown
filter key could be silently ignored by some portal, which would make everybody an administrator. So the
users are read twice, with ``IS_ADMIN=Y`` and ``IS_ADMIN=N``: when the two answers are disjoint the filter
was honoured, and their union is the user list; when they overlap the filter was ignored, and only the
token's own user counts, from `profile` (`ADMIN` true). The authorising user (the installing administrator
or the webhook's owner) is counted from `profile` in every case.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..bitrix.errors import IncompleteListError, MethodError
from ..sync.reference import read_departments

log = logging.getLogger("hub24.users")


@dataclass
class PortalUser:
    """One `user.get` record, normalised."""

    bitrix_user_id: int
    name: str
    last_name: str
    email: str | None
    position: str | None
    departments: list[int]
    active: bool
    is_admin: bool = False

    @property
    def label(self) -> str:
        """How a report names the user: full name and Bitrix24 id."""
        full = " ".join(p for p in (self.name, self.last_name) if p) or "(no name)"
        return f"{full} (Bitrix24 user {self.bitrix_user_id})"


@dataclass
class UserRead:
    """The users read from a portal and how administrators were told apart."""

    users: list[PortalUser]
    admin_source: str  # "is_admin_filter" | "profile_only"
    admin_mode: bool
    notes: list[str] = field(default_factory=list)


def normalise(raw: dict[str, Any]) -> PortalUser | None:
    """A `user.get` (or ONUSERADD) record as a PortalUser; None when it has no usable ID."""
    try:
        uid = int(raw.get("ID"))
    except (TypeError, ValueError):
        return None
    deps = raw.get("UF_DEPARTMENT") or []
    deps = deps if isinstance(deps, list) else [deps]
    email = str(raw.get("EMAIL") or "").strip() or None
    active = raw.get("ACTIVE") in (True, "Y", "true", "1", 1)
    return PortalUser(bitrix_user_id=uid, name=str(raw.get("NAME") or "").strip()[:255],
                      last_name=str(raw.get("LAST_NAME") or "").strip()[:255], email=email[:255] if email else None,
                      position=(str(raw.get("WORK_POSITION") or "").strip() or None),
                      departments=sorted({int(d) for d in deps if str(d).strip().isdigit()}), active=active)


def _list(client: Any, flt: dict, admin_mode: bool) -> list[dict]:
    params: dict[str, Any] = {"FILTER": dict(flt)}
    if admin_mode:
        params["ADMIN_MODE"] = "True"
    return list(client.list_all("user.get", params))


def _refusal(exc: Exception) -> bool:
    """True when the portal refused the request itself (bad filter, access denied), not the transport."""
    if isinstance(exc, IncompleteListError):
        if exc.__cause__ is not None:
            return isinstance(exc.__cause__, MethodError)
        return exc.code not in ("PAGE_INCONSISTENT", "PAGE_MALFORMED", "PAGE_MISSING")
    return isinstance(exc, MethodError)


def _profile_admin(client: Any) -> int | None:
    """The token's own user id when that user is an administrator (`profile`), else None."""
    try:
        me = client.call("profile") or {}
    except MethodError:
        return None
    try:
        return int(me.get("ID")) if me.get("ADMIN") in (True, "Y", "true", 1, "1") else None
    except (TypeError, ValueError):
        return None


def read_users(client: Any, flt: dict[str, Any]) -> UserRead:
    """Users matching `flt` (e.g. ``{"ACTIVE": True}`` or ``{"ID": 15}``), each with `is_admin` set.

    Raises the gateway's errors (RateLimited, AuthLost, ScopeMissing, IncompleteListError...) when the
    users themselves cannot be read; an unusable admin filter only narrows who counts as an administrator.
    """
    notes: list[str] = []
    admin_mode = True
    try:
        yes: list[dict] | None = _list(client, {**flt, "IS_ADMIN": "Y"}, admin_mode)
    except (MethodError, IncompleteListError) as exc:  # ADMIN_MODE or the IS_ADMIN filter refused
        if not _refusal(exc):
            raise
        log.info("user.get with ADMIN_MODE and IS_ADMIN refused: %s", exc.code)
        yes = None
    if yes is None:
        try:
            everyone = _list(client, flt, admin_mode)
        except (MethodError, IncompleteListError) as exc:
            if not _refusal(exc):
                raise
            admin_mode = False
            everyone = _list(client, flt, admin_mode)
            notes.append("the portal refused ADMIN_MODE; users were read with the authorising user's view")
        return _with_profile(client, everyone, set(), "profile_only", admin_mode, notes)
    no = _list(client, {**flt, "IS_ADMIN": "N"}, admin_mode)
    yes_ids = {str(u.get("ID")) for u in yes}
    if yes_ids & {str(u.get("ID")) for u in no}:
        notes.append("the portal ignores the IS_ADMIN filter; only the authorising user is known to be an administrator")
        return _with_profile(client, yes, set(), "profile_only", admin_mode, notes)
    admins = {int(i) for i in yes_ids if i.isdigit()}
    return _with_profile(client, yes + no, admins, "is_admin_filter", admin_mode, notes)


def _with_profile(client: Any, raw: list[dict], admins: set[int], source: str, admin_mode: bool,
                  notes: list[str]) -> UserRead:
    me = _profile_admin(client)
    if me is not None:
        admins = admins | {me}
    users: dict[int, PortalUser] = {}
    for r in raw:
        u = normalise(r)
        if u is not None:
            u.is_admin = u.bitrix_user_id in admins
            users[u.bitrix_user_id] = u
    return UserRead([users[k] for k in sorted(users)], source, admin_mode, notes)


def count_email_claims(client: Any, email: str) -> list[int]:
    """Ids of the active portal users whose e-mail is `email` (any case), for a single-user sync."""
    # LIKE (`%`) compares without case, as e-mails are matched; exact equality is checked below
    rows = _list(client, {"ACTIVE": True, "%EMAIL": email}, True)
    return sorted(u.bitrix_user_id for u in map(normalise, rows)
                  if u is not None and u.email and u.email.lower() == email.lower())


@dataclass
class PortalDepartment:
    """One `department.get` record, normalised."""

    bitrix_id: int
    name: str
    parent: int | None
    head: int | None
    sort: int | None


def _int(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n or None


def read_portal_departments(client: Any) -> list[PortalDepartment]:
    """Every department with its parent and head (``UF_HEAD``); raises the gateway's errors."""
    out = []
    for d in read_departments(client):
        bid = _int(d.get("ID"))
        if bid is not None:
            out.append(PortalDepartment(bid, str(d.get("NAME") or "")[:255], _int(d.get("PARENT")),
                                        _int(d.get("UF_HEAD")), _int(d.get("SORT"))))
    return out
