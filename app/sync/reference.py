"""Reference data: stages and lists (crm.status.list), pipelines (crm.category.list), users, departments.

They are small, so every sync reads them whole and replaces the tables; labels in entity tables are
re-derived when a stage or list value was renamed.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .entities import EntitySpec
from .schema import ident
from .transform import Labels, status_family

PAGE = 50


def _rows(result: Any, key: str | None = None) -> list[dict]:
    if isinstance(result, dict) and key:
        return list(result.get(key) or [])
    return list(result or [])


def read_users(client: Any) -> list[dict]:
    """Every user (active or not): the gateway's keyset paging over `user.get` in admin mode, which waits out
    rate limits met on the way (a list is never cut short)."""
    return list(client.list_all("user.get", {"ADMIN_MODE": "True"}))


def read_departments(client: Any) -> list[dict]:
    """Every department (department.get pages of 50)."""
    out: list[dict] = []
    start = 0
    while True:
        page = _rows(client.call("department.get", {"START": start}))  # default order: ID ascending
        out.extend(page)
        if len(page) < PAGE:
            return out
        start += PAGE


def sync_reference(client: Any, conn: Connection, schema: str, specs: Iterable[EntitySpec]) -> dict[str, int]:
    """Replace the reference tables with the portal's current lists; returns row counts."""
    s = ident(schema)
    specs = list(specs)
    statuses = _rows(client.call("crm.status.list", {"order": {"SORT": "ASC"}}))
    commands = {f"c{spec.entity_type_id}": ("crm.category.list", {"entityTypeId": spec.entity_type_id})
                for spec in specs if spec.has_categories}
    cat_results = client.batch(commands) if commands else {}
    users = read_users(client)
    departments = read_departments(client)

    before = _labels_digest(conn, s)
    conn.exec_driver_sql(f"DELETE FROM {s}.statuses")
    if statuses:
        conn.execute(text(f"INSERT INTO {s}.statuses (entity_id, status_id, name, sort, category_id, semantics, color, raw) "
                          "VALUES (:e, :i, :n, :so, :c, :se, :co, CAST(:raw AS jsonb)) ON CONFLICT DO NOTHING"),
                     [{"e": st["ENTITY_ID"], "i": st["STATUS_ID"], "n": st.get("NAME") or st["STATUS_ID"],
                       "so": _int(st.get("SORT")), "c": _int(st.get("CATEGORY_ID")),
                       "se": st.get("SEMANTICS") or (st.get("EXTRA") or {}).get("SEMANTICS"),
                       "co": st.get("COLOR"), "raw": json.dumps(st, ensure_ascii=False)} for st in statuses])
    conn.exec_driver_sql(f"DELETE FROM {s}.categories")
    cats = [(int(key[1:]), c) for key, res in cat_results.items() for c in _rows(res, "categories")]
    if cats:
        conn.execute(text(f"INSERT INTO {s}.categories (entity_type_id, id, name, sort, is_default, raw) "
                          "VALUES (:et, :id, :n, :so, :d, CAST(:raw AS jsonb)) ON CONFLICT DO NOTHING"),
                     [{"et": et, "id": int(c["id"]), "n": c.get("name") or str(c["id"]), "so": _int(c.get("sort")),
                       "d": str(c.get("isDefault", "N")).upper() == "Y", "raw": json.dumps(c, ensure_ascii=False)}
                      for et, c in cats])
    conn.exec_driver_sql(f"DELETE FROM {s}.users")
    if users:
        conn.execute(text(f"INSERT INTO {s}.users (id, name, last_name, full_name, email, active, position, departments, "
                          "is_admin, raw) VALUES (:id, :n, :ln, :fn, :e, :a, :p, :d, :adm, CAST(:raw AS jsonb))"),
                     [_user_row(u) for u in users])
    conn.exec_driver_sql(f"DELETE FROM {s}.departments")
    if departments:
        conn.execute(text(f"INSERT INTO {s}.departments (id, name, parent, sort, head, raw) "
                          "VALUES (:id, :n, :p, :so, :h, CAST(:raw AS jsonb))"),
                     [{"id": int(d["ID"]), "n": d.get("NAME") or "", "p": _int(d.get("PARENT")), "so": _int(d.get("SORT")),
                       "h": _int(d.get("UF_HEAD")), "raw": json.dumps(d, ensure_ascii=False)} for d in departments])
    return {"statuses": len(statuses), "categories": len(cats), "users": len(users), "departments": len(departments),
            "labels_changed": before is not None and before != _labels_digest(conn, s)}


def _labels_digest(conn: Connection, s: str) -> str | None:
    """A digest of every stage/list/pipeline name: when it changes, label columns must be re-derived."""
    return conn.exec_driver_sql(
        f"SELECT md5(coalesce((SELECT string_agg(entity_id || '/' || status_id || '=' || name, ',' ORDER BY entity_id, status_id) "
        f"FROM {s}.statuses), '') || '|' || coalesce((SELECT string_agg(id || '=' || name, ',' ORDER BY id) "
        f"FROM {s}.categories), ''))").scalar()


def _int(v: Any) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _user_row(u: dict) -> dict:
    name, last = (u.get("NAME") or "").strip(), (u.get("LAST_NAME") or "").strip()
    deps = u.get("UF_DEPARTMENT") or []
    return {"id": int(u["ID"]), "n": name, "ln": last, "fn": " ".join(p for p in (name, last) if p) or None,
            "e": u.get("EMAIL") or None, "a": u.get("ACTIVE") in (True, "Y", "true", 1, "1"),
            "p": u.get("WORK_POSITION") or None, "d": [int(x) for x in (deps if isinstance(deps, list) else [deps]) if str(x).isdigit()],
            "adm": bool(u.get("IS_ADMIN")) if "IS_ADMIN" in u else None, "raw": json.dumps(u, ensure_ascii=False)}


def load_labels(conn: Connection, schema: str) -> Labels:
    """Id -> label lookups from the mirrored reference tables."""
    s = ident(schema)
    labels = Labels()
    for entity_id, status_id, name in conn.execute(text(f"SELECT entity_id, status_id, name FROM {s}.statuses")):
        labels.statuses.setdefault(status_family(entity_id), {})[status_id] = name
    labels.categories = {int(i): n for i, n in conn.execute(text(f"SELECT id, name FROM {s}.categories"))}
    return labels
