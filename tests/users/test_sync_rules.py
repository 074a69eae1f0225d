"""The directory sync against the seeded sandbox people: every matching rule, checked on the table.

Sandbox users 1..12: 1 and 2 are portal administrators, 9 is deactivated, 11 has no e-mail, 7 and 8 share
user7@example.com. The webhook belongs to user 1.
"""
from sqlalchemy import select

from app.models.directory import DirectoryDepartment, DirectoryRun, DirectorySettings, DirectoryUser
from app.users import passwords
from app.users.service import run_directory_sync

from .conftest import add_portal_user


def _hub24_user(db, portal, **kw):
    kw.setdefault("name", "")
    kw.setdefault("last_name", "")
    kw.setdefault("departments", [])
    u = DirectoryUser(portal_id=portal.id, password_hash=passwords.unusable_password_hash(), **kw)
    db.add(u)
    return u


def snapshot(db, portal):
    rows = db.scalars(select(DirectoryUser).where(DirectoryUser.portal_id == portal.id).order_by(DirectoryUser.id))
    return [(u.id, u.bitrix_user_id, u.email, u.name, u.last_name, u.position, tuple(u.departments), u.active, u.role,
             u.is_portal_admin, u.password_hash, u.password_set_at, u.updated_at, u.deactivated_at) for u in rows]


def seed_existing(db, portal):
    """Hub24 users present before the first sync, one per rule."""
    by_id = _hub24_user(db, portal, bitrix_user_id=3, email="old3@example.com", name="Old", role="manager")
    passwords.set_password(by_id, "correct horse battery")
    by_mail = _hub24_user(db, portal, email="USER4@Example.COM", name="Ivan", role="admin")
    passwords.set_password(by_mail, "another good secret")
    leaver = _hub24_user(db, portal, bitrix_user_id=9, email="user9@example.com", role="employee")
    demoted_in_portal = _hub24_user(db, portal, bitrix_user_id=5, email="user5@example.com", role="admin")
    not_promoted = _hub24_user(db, portal, bitrix_user_id=2, email="user2@example.com", role="employee")
    local = _hub24_user(db, portal, email="local@example.com", name="Local only", role="manager")
    db.commit()
    return {"by_id": by_id, "by_mail": by_mail, "leaver": leaver, "admin_kept": demoted_in_portal,
            "not_promoted": not_promoted, "local": local}


def test_first_sync_applies_every_rule(app, db, portal, sandbox):
    nomail_admin = add_portal_user(sandbox, NAME="Nora", LAST_NAME="Nomail", IS_ADMIN=True)
    existing = seed_existing(db, portal)
    hashes = {k: (u.password_hash, u.password_set_at) for k, u in existing.items()}

    run = run_directory_sync(portal.id, "cli")
    assert run["status"] == "succeeded", run
    report = run["report"]
    users = {u.bitrix_user_id: u for u in db.scalars(select(DirectoryUser).where(DirectoryUser.portal_id == portal.id))
             if u.bitrix_user_id is not None}

    # matched by Bitrix24 id: facts updated, role and password untouched
    u3 = users[3]
    assert u3.id == existing["by_id"].id and u3.email == "user3@example.com" and u3.name == "Emma"
    assert u3.position == "Head" and u3.departments == [5] and u3.role == "manager"
    assert passwords.check_password(u3, "correct horse battery")
    # matched by e-mail in another case: linked, e-mail as the portal has it, admin role kept
    u4 = users[4]
    assert u4.id == existing["by_mail"].id and u4.email == "user4@example.com" and u4.role == "admin"
    assert passwords.check_password(u4, "another good secret")
    # deactivated in the portal: deactivated here, not deleted
    assert users[9].id == existing["leaver"].id and users[9].active is False and users[9].deactivated_at
    # roles never change on update: an admin set in Hub24 stays, a portal admin is not promoted
    assert users[5].role == "admin" and users[2].role == "employee" and users[2].is_portal_admin is True
    # new users: employee, active, unusable password; the portal admin becomes admin
    assert users[1].role == "admin" and users[1].active and users[1].password_set_at is None
    assert not passwords.check_password(users[1], "")
    for bid in (6, 10, 12):
        assert users[bid].role == "employee" and users[bid].active and users[bid].password_set_at is None
    # no e-mail: an employee may go without one; an admin may not and is skipped by name
    assert users[11].email is None and users[11].role == "employee"
    assert nomail_admin not in users
    skipped = {s["bitrix_user_id"]: s for s in report["skipped"]}
    assert "Nora Nomail" in skipped[nomail_admin]["user"] and "no e-mail" in skipped[nomail_admin]["reason"]
    # duplicate e-mail: neither linked nor created, the conflict names both
    assert 7 not in users and 8 not in users
    assert report["conflicts"] == [{"email": "user7@example.com", "bitrix_user_ids": [7, 8],
                                    "reason": report["conflicts"][0]["reason"]}]
    assert {7, 8} <= set(skipped)
    # untouched: a Hub24-only user
    local = db.get(DirectoryUser, existing["local"].id)
    assert local.active and local.role == "manager" and local.bitrix_user_id is None
    # passwords untouched everywhere
    for key, row in existing.items():
        db.refresh(row)
        assert (row.password_hash, row.password_set_at) == hashes[key], key
    assert {c["bitrix_user_id"] for c in report["created"]} == {1, 6, 10, 11, 12}
    assert report["counts"] == {"created": 5, "updated": 4, "deactivated": 1, "skipped": 3, "conflicts": 1}
    assert report["admin_source"] == "is_admin_filter"
    # departments: the tree with heads
    deps = {d.bitrix_id: d for d in db.scalars(select(DirectoryDepartment).where(DirectoryDepartment.portal_id == portal.id))}
    assert deps[7].parent_bitrix_id == 2 and deps[2].parent_bitrix_id == 1 and deps[1].parent_bitrix_id is None
    assert deps[7].head_bitrix_user_id == 7 and deps[7].name == "Продажи Москва"
    assert db.scalar(select(DirectoryRun.status).where(DirectoryRun.id == run["run_id"])) == "succeeded"


def test_second_sync_changes_nothing(app, db, portal, sandbox):
    seed_existing(db, portal)
    run_directory_sync(portal.id, "cli")
    before = snapshot(db, portal)
    deps_before = [(d.bitrix_id, d.name, d.parent_bitrix_id, d.head_bitrix_user_id, d.updated_at)
                   for d in db.scalars(select(DirectoryDepartment).order_by(DirectoryDepartment.bitrix_id))]
    again = run_directory_sync(portal.id, "cli")["report"]
    assert again["counts"]["created"] == again["counts"]["updated"] == again["counts"]["deactivated"] == 0
    assert again["departments"] == {"created": 0, "updated": 0, "deactivated": 0}
    assert again["counts"]["conflicts"] == 1  # still reported, still harmless
    db.expire_all()
    assert snapshot(db, portal) == before
    assert [(d.bitrix_id, d.name, d.parent_bitrix_id, d.head_bitrix_user_id, d.updated_at)
            for d in db.scalars(select(DirectoryDepartment).order_by(DirectoryDepartment.bitrix_id))] == deps_before


def test_portal_changes_flow_through(app, db, portal, sandbox):
    run_directory_sync(portal.id, "cli")
    crm = sandbox.portal.crm
    crm.users[6]["WORK_POSITION"] = "Team lead"
    crm.users[6]["EMAIL"] = "Anna.New@Example.com"
    crm.users[10]["ACTIVE"] = False
    crm.users[9]["ACTIVE"] = True  # back from leave: created now (never was here)
    crm.users[8]["EMAIL"] = "user8@example.com"  # the duplicate resolved: both can be linked
    crm.departments[8]["NAME"] = "Sales EU"
    del crm.departments[6]
    report = run_directory_sync(portal.id, "cli")["report"]
    users = {u.bitrix_user_id: u for u in db.scalars(select(DirectoryUser).where(DirectoryUser.portal_id == portal.id))}
    assert users[6].position == "Team lead" and users[6].email == "Anna.New@Example.com"
    assert users[10].active is False and users[9].active is True
    assert users[7].email == "user7@example.com" and users[8].email == "user8@example.com"
    assert report["conflicts"] == []
    deps = {d.bitrix_id: d for d in db.scalars(select(DirectoryDepartment))}
    assert deps[8].name == "Sales EU" and deps[6].active is False
    assert report["departments"] == {"created": 0, "updated": 1, "deactivated": 1}
    # reactivation in the portal reactivates the row
    crm.users[10]["ACTIVE"] = True
    run_directory_sync(portal.id, "cli")
    db.refresh(users[10])
    assert users[10].active is True and users[10].deactivated_at is None


def test_roles_without_email_setting_allows_admins_without_email(app, db, portal, sandbox):
    uid = add_portal_user(sandbox, NAME="Nora", IS_ADMIN=True)
    db.add(DirectorySettings(portal_id=portal.id, roles_without_email=["employee", "admin"]))
    db.commit()
    run_directory_sync(portal.id, "cli")
    row = db.scalar(select(DirectoryUser).where(DirectoryUser.bitrix_user_id == uid))
    assert row is not None and row.email is None and row.role == "admin"


def test_email_already_held_by_another_linked_user_is_a_conflict(app, db, portal, sandbox):
    _hub24_user(db, portal, bitrix_user_id=500, email="user12@example.com", role="employee")  # left long ago
    db.commit()
    report = run_directory_sync(portal.id, "cli")["report"]
    assert db.scalar(select(DirectoryUser).where(DirectoryUser.bitrix_user_id == 12)) is None
    conflict = next(c for c in report["conflicts"] if c["email"] == "user12@example.com")
    assert conflict["bitrix_user_ids"] == [12, 500]
    held = db.scalar(select(DirectoryUser).where(DirectoryUser.bitrix_user_id == 500))
    assert held.email == "user12@example.com" and held.active is False  # 500 is not in the portal


def test_paused_portal_records_a_failed_run_and_changes_nothing(app, db, portal, sandbox):
    from app.models import PortalStatus

    portal.status = PortalStatus.needs_reinstall
    portal.needs_reinstall_reason = "invalid_grant"
    db.commit()
    run = run_directory_sync(portal.id, "api")
    assert run["status"] == "failed" and "reinstall" in run["error"]
    assert db.scalar(select(DirectoryUser).where(DirectoryUser.portal_id == portal.id)) is None
