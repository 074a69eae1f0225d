"""Bring Hub24's directory in line with the portal: the matching rules and the report.

Rules (issue 8), applied to the active users `user.get` returns:

* a portal user is matched to a Hub24 user first by Bitrix24 id, then by e-mail (case-insensitive), and
  only to a Hub24 user not yet linked to another Bitrix24 user;
* a match is updated: name, e-mail, position, departments, Bitrix24 id (and reactivated if it was
  deactivated); its password and role are never touched, so an admin set in Hub24 stays admin;
* a portal user without a match is created, active, with an unusable random password and role
  `employee` (`admin` when Bitrix24 reports them as a portal administrator);
* a user without an e-mail is matched by id only; a new one is created without e-mail only when the role
  they would get is allowed without one (`DirectorySettings.roles_without_email`, default employees only:
  admins and managers sign in outside Bitrix24 with their e-mail), and is otherwise skipped, named;
* an e-mail claimed by two portal users, or already held by another Hub24 user, links and changes nothing:
  the conflict is reported;
* a Hub24 user whose Bitrix24 user is no longer active in the portal is deactivated, never deleted.

Departments follow `department.get`: upserted by id with parent and head; one that disappeared is marked
inactive. Nothing changes a row that already agrees, so a second run reports no changes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models.directory import DirectoryDepartment, DirectorySettings, DirectoryUser
from .passwords import unusable_password_hash
from .portal import PortalDepartment, PortalUser, UserRead

DEFAULT_ROLES_WITHOUT_EMAIL = ["employee"]


@dataclass
class Report:
    """What one directory sync did; `as_dict()` is what the API, the CLI and the run record show."""

    created: list[dict] = field(default_factory=list)
    updated: list[dict] = field(default_factory=list)
    deactivated: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    departments: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "deactivated": 0})
    admin_source: str | None = None
    users_read: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated or any(self.departments.values()))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["counts"] = {k: len(out[k]) for k in ("created", "updated", "deactivated", "skipped", "conflicts")}
        return out

    def text(self) -> str:
        """A few readable lines for the terminal."""
        c = self.as_dict()["counts"]
        lines = [f"users read {self.users_read}: created {c['created']}, updated {c['updated']}, "
                 f"deactivated {c['deactivated']}, skipped {c['skipped']}, conflicts {c['conflicts']}; "
                 f"departments created {self.departments['created']}, updated {self.departments['updated']}, "
                 f"deactivated {self.departments['deactivated']}"]
        lines += [f"  skipped {s['user']}: {s['reason']}" for s in self.skipped]
        lines += [f"  conflict {c['email']}: {c['reason']}" for c in self.conflicts]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def settings_for(session: Session, portal_id: int) -> DirectorySettings:
    """The portal's directory settings (defaults when none were saved; not added to the session)."""
    row = session.get(DirectorySettings, portal_id)
    return row or DirectorySettings(portal_id=portal_id, roles_without_email=list(DEFAULT_ROLES_WITHOUT_EMAIL))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _low(email: str | None) -> str | None:
    return email.lower() if email else None


def _update(row: DirectoryUser, pu: PortalUser, email_ok: bool, now: datetime) -> list[str]:
    """Copy the portal's facts onto `row`; returns the names of the fields that changed (role, password never)."""
    want: dict[str, Any] = {"bitrix_user_id": pu.bitrix_user_id, "name": pu.name, "last_name": pu.last_name,
                            "position": pu.position, "departments": pu.departments, "active": True,
                            "is_portal_admin": pu.is_admin}
    if pu.email and email_ok:
        want["email"] = pu.email
    changed = [k for k, v in want.items() if getattr(row, k) != v]
    for k in changed:
        setattr(row, k, want[k])
    if "active" in changed:
        row.deactivated_at = None
    if changed:
        row.updated_at = now
    return changed


def apply_users(session: Session, portal_id: int, read: UserRead, report: Report, *, full: bool,
                email_claims: dict[str, list[int]] | None = None) -> None:
    """Apply the rules to the users in `read` (not committed).

    `full` means `read` holds every active user of the portal: only then are missing users deactivated
    and e-mail claims counted from `read` itself; a single-user run passes `email_claims` it looked up.
    """
    now = _now()
    settings = settings_for(session, portal_id)
    allowed_without_email = set(settings.roles_without_email or [])
    rows = list(session.scalars(select(DirectoryUser).where(DirectoryUser.portal_id == portal_id)))
    by_bid = {r.bitrix_user_id: r for r in rows if r.bitrix_user_id is not None}
    by_email = {_low(r.email): r for r in rows if r.email}
    claims: dict[str, list[int]] = defaultdict(list)
    for pu in read.users:
        if pu.active and pu.email:
            claims[pu.email.lower()].append(pu.bitrix_user_id)
    for email, ids in (email_claims or {}).items():
        claims[email.lower()] = sorted(set(claims[email.lower()]) | set(ids))
    reported: set[str] = set()
    report.users_read += len(read.users)
    report.admin_source = read.admin_source
    report.warnings.extend(read.notes)

    def conflict(email: str, reason: str, ids: list[int]) -> None:
        if email not in reported:
            reported.add(email)
            report.conflicts.append({"email": email, "bitrix_user_ids": ids, "reason": reason})

    def email_free_for(pu: PortalUser, row: DirectoryUser | None) -> bool:
        """May `pu`'s e-mail be written onto `row` (None: a new row)? Reports the conflict when not."""
        low = _low(pu.email)
        if low is None:
            return False
        ids = claims.get(low, [pu.bitrix_user_id])
        if len(ids) > 1:
            conflict(low, f"{len(ids)} portal users share this e-mail (Bitrix24 ids {', '.join(map(str, ids))}); "
                          "none is linked by it until it is unique in Bitrix24", ids)
            return False
        holder = by_email.get(low)
        if holder is not None and holder is not row:
            conflict(low, f"Hub24 user {holder.id} (Bitrix24 user {holder.bitrix_user_id}) already has this e-mail; "
                          f"Bitrix24 user {pu.bitrix_user_id} claims it too", sorted({pu.bitrix_user_id} |
                                                                                    ({holder.bitrix_user_id} - {None})))
            return False
        return True

    for pu in read.users:
        if not pu.active:
            row = by_bid.get(pu.bitrix_user_id)
            if row is not None and row.active:
                _deactivate(row, now, report, "deactivated in Bitrix24")
            continue
        row = by_bid.get(pu.bitrix_user_id)
        if row is not None:
            same_email = _low(pu.email) == _low(row.email)
            ok = bool(pu.email) and (same_email or email_free_for(pu, row))
            old_email = _low(row.email)
            changed = _update(row, pu, ok, now)
            if "email" in changed:
                by_email.pop(old_email, None)
                by_email[_low(row.email)] = row
            if changed:
                report.updated.append({"id": row.id, "bitrix_user_id": pu.bitrix_user_id, "fields": changed})
            continue
        if pu.email is None:
            role = "admin" if pu.is_admin else "employee"
            if role not in allowed_without_email:
                report.skipped.append({"bitrix_user_id": pu.bitrix_user_id, "user": pu.label,
                                       "reason": f"has no e-mail, and the role {role} needs one to sign in; add an "
                                                 "e-mail in Bitrix24 or allow this role without e-mail"})
                continue
        else:
            low = pu.email.lower()
            holder = by_email.get(low)
            target = holder if holder is not None and holder.bitrix_user_id is None else None
            if not email_free_for(pu, target):
                report.skipped.append({"bitrix_user_id": pu.bitrix_user_id, "user": pu.label,
                                       "reason": f"e-mail conflict on {low} (see conflicts)"})
                continue
            if target is not None:  # a Hub24 user with this e-mail, not linked yet: link it
                changed = _update(target, pu, True, now)
                by_bid[pu.bitrix_user_id] = target
                report.updated.append({"id": target.id, "bitrix_user_id": pu.bitrix_user_id, "fields": changed,
                                       "matched_by": "email"})
                continue
        row = DirectoryUser(portal_id=portal_id, bitrix_user_id=pu.bitrix_user_id, email=pu.email, name=pu.name,
                            last_name=pu.last_name, position=pu.position, departments=pu.departments, active=True,
                            role="admin" if pu.is_admin else "employee", is_portal_admin=pu.is_admin,
                            password_hash=unusable_password_hash(), created_at=now, updated_at=now)
        session.add(row)
        by_bid[pu.bitrix_user_id] = row
        if pu.email:
            by_email[pu.email.lower()] = row
        report.created.append({"bitrix_user_id": pu.bitrix_user_id, "user": pu.label, "email": pu.email,
                               "role": row.role})
    if full:
        seen = {pu.bitrix_user_id for pu in read.users if pu.active}
        if not seen:
            report.warnings.append("the portal listed no active users; nobody was deactivated")
            return
        if not read.admin_mode:
            report.warnings.append("users were read without ADMIN_MODE; nobody was deactivated")
            return
        for bid, row in sorted(by_bid.items()):
            if bid not in seen and row.active:
                _deactivate(row, now, report, "no longer an active user in Bitrix24")
    session.flush()


def _deactivate(row: DirectoryUser, now: datetime, report: Report, reason: str) -> None:
    row.active, row.deactivated_at, row.updated_at = False, now, now
    report.deactivated.append({"id": row.id, "bitrix_user_id": row.bitrix_user_id, "reason": reason})


def apply_departments(session: Session, portal_id: int, departments: list[PortalDepartment], report: Report) -> None:
    """Upsert the department tree (not committed); departments gone from the portal become inactive."""
    now = _now()
    rows = {r.bitrix_id: r for r in session.scalars(select(DirectoryDepartment)
                                                    .where(DirectoryDepartment.portal_id == portal_id))}
    seen = set()
    for d in departments:
        seen.add(d.bitrix_id)
        want = {"name": d.name, "parent_bitrix_id": d.parent, "head_bitrix_user_id": d.head, "sort": d.sort,
                "active": True}
        row = rows.get(d.bitrix_id)
        if row is None:
            session.add(DirectoryDepartment(portal_id=portal_id, bitrix_id=d.bitrix_id, created_at=now, updated_at=now,
                                            **want))
            report.departments["created"] += 1
            continue
        changed = [k for k, v in want.items() if getattr(row, k) != v]
        for k in changed:
            setattr(row, k, want[k])
        if changed:
            row.updated_at = now
            report.departments["updated"] += 1
    if departments:
        for bid, row in rows.items():
            if bid not in seen and row.active:
                row.active, row.updated_at = False, now
                report.departments["deactivated"] += 1
    session.flush()
