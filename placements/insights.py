"""Insights for one deal, read from the portal's CRM mirror (app/sync/README.md) for the deal tab.

The mirror keeps each deal's current stage, when it moved there (`moved_time`) and when it was created,
not every past move, so the "stage history" is the pipeline's stages in order with the ones the deal has
passed, the time it took to get to its stage and the time it has spent there. Similar deals are those of
the same pipeline and source: how many were won or lost and for how much on average.

Everything is read-only, schema-qualified to the portal's own schema, and tolerant of a mirror that has
not been synced yet (or that lacks a column): the page then says so instead of failing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text

from app.db import db_session
from app.sync.schema import schema_name


def _columns(schema: str, table: str) -> set[str]:
    rows = db_session().execute(text("SELECT column_name FROM information_schema.columns "
                                     "WHERE table_schema = :s AND table_name = :t"), {"s": schema, "t": table})
    return {r[0] for r in rows}


def _pick(cols: set[str], *names: str) -> str:
    """A select list of the wanted columns that exist (missing ones as NULL), each under its own name."""
    return ", ".join(f'"{n}"' if n in cols else f"NULL AS {n}" for n in names)


def _days(delta_s: float | None) -> float | None:
    return None if delta_s is None else round(max(delta_s, 0) / 86400, 1)


def _aware(dt: Any) -> datetime | None:
    if not isinstance(dt, datetime):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def deal_insights(portal_id: int, deal_id: int, now: datetime | None = None) -> dict[str, Any]:
    """What the deal tab shows for `deal_id`: {"state": "not_synced" | "not_found" | "ok", ...}."""
    schema = schema_name(portal_id)
    session = db_session()
    cols = _columns(schema, "deals")
    if not cols:
        return {"state": "not_synced"}
    q = f'"{schema}"'
    deal = session.execute(text(
        f"SELECT {_pick(cols, 'id', 'title', 'stage_id', 'stage_id_label', 'category_id', 'category_id_label', 'stage_semantic_id', 'opportunity', 'currency_id', 'company_id', 'contact_ids', 'contact_id', 'source_id', 'source_id_label', 'assigned_by_id', 'created_time', 'moved_time', 'closedate', 'closed')} "
        f"FROM {q}.deals WHERE id = :id"), {"id": deal_id}).mappings().first()
    if deal is None:
        return {"state": "not_found"}
    now = now or datetime.now(timezone.utc)
    created, moved = _aware(deal["created_time"]), _aware(deal["moved_time"])
    category = deal["category_id"] or 0
    out: dict[str, Any] = {
        "state": "ok",
        "deal": {"id": deal["id"], "title": deal["title"] or f"Deal #{deal['id']}",
                 "stage": deal["stage_id_label"] or deal["stage_id"], "stage_id": deal["stage_id"],
                 "pipeline": deal["category_id_label"] or ("General" if category == 0 else str(category)),
                 "amount": float(deal["opportunity"]) if deal["opportunity"] is not None else None,
                 "currency": deal["currency_id"] or "", "source": deal["source_id_label"] or deal["source_id"],
                 "semantics": deal["stage_semantic_id"] or "", "created": created, "moved": moved,
                 "closedate": deal["closedate"]},
        "time": {"to_stage_days": _days((moved - created).total_seconds()) if moved and created else None,
                 "in_stage_days": _days((now - moved).total_seconds()) if moved else None,
                 "age_days": _days((now - created).total_seconds()) if created else None},
    }
    out["stages"] = _stages(q, deal["stage_id"], category)
    out["assigned"] = _user(q, deal["assigned_by_id"])
    out["company"] = _company(q, deal["company_id"])
    out["contacts"] = _contacts(q, deal)
    out["similar"] = _similar(q, cols, deal)
    return out


def _stages(q: str, stage_id: str | None, category: int) -> list[dict[str, Any]]:
    entity = "DEAL_STAGE" if not category else f"DEAL_STAGE_{category}"
    if not _columns(q.strip('"'), "statuses"):
        return []  # statuses not mirrored yet: no stage bar, the rest still shows
    rows = db_session().execute(text(f"SELECT status_id, name, sort, semantics, color FROM {q}.statuses "
                                      "WHERE entity_id = :e ORDER BY sort, status_id"), {"e": entity}).all()
    current = next((i for i, r in enumerate(rows) if r.status_id == stage_id), None)
    out = []
    for i, r in enumerate(rows):
        if current is None:
            state = "unknown"
        elif i == current:
            state = "current"
        elif i < current and (r.semantics or "") not in ("S", "F"):
            state = "passed"
        else:
            state = "ahead"
        out.append({"id": r.status_id, "name": r.name, "semantics": r.semantics if r.semantics in ("S", "F") else "",
                    "color": r.color or "",
                    "state": state})
    return out


def _user(q: str, user_id: Any) -> dict[str, Any] | None:
    if user_id is None:
        return None
    if not _columns(q.strip('"'), "users"):
        return {"id": int(user_id), "name": f"User {user_id}", "position": ""}
    row = db_session().execute(text(f"SELECT id, full_name, position FROM {q}.users WHERE id = :id"),
                               {"id": int(user_id)}).first()
    return {"id": row.id, "name": row.full_name or f"User {row.id}", "position": row.position or ""} if row else None


def _company(q: str, company_id: Any) -> dict[str, Any] | None:
    if not company_id:
        return None
    cols = _columns(q.strip('"'), "companies")
    if not cols:
        return {"id": int(company_id), "title": f"Company #{company_id}"}
    row = db_session().execute(text(f"SELECT {_pick(cols, 'id', 'title', 'industry_label', 'industry')} "
                                    f"FROM {q}.companies WHERE id = :id"), {"id": int(company_id)}).mappings().first()
    if row is None:
        return {"id": int(company_id), "title": f"Company #{company_id}"}
    return {"id": row["id"], "title": row["title"] or f"Company #{row['id']}",
            "industry": row["industry_label"] or row["industry"] or ""}


def _contacts(q: str, deal: Any) -> list[dict[str, Any]]:
    ids: list[int] = []
    if _columns(q.strip('"'), "item_contacts"):
        ids = [r[0] for r in db_session().execute(text(
            f"SELECT contact_id FROM {q}.item_contacts WHERE table_name = 'deals' AND entity_id = :id "
            "ORDER BY contact_id"), {"id": deal["id"]})]
    if not ids:
        raw = deal["contact_ids"] if isinstance(deal["contact_ids"], list) else []
        ids = [int(x) for x in raw if str(x).isdigit()] or ([int(deal["contact_id"])] if deal["contact_id"] else [])
    if not ids:
        return []
    cols = _columns(q.strip('"'), "contacts")
    found: dict[int, Any] = {}
    if cols:
        rows = db_session().execute(text(f"SELECT {_pick(cols, 'id', 'name', 'last_name', 'post')} FROM {q}.contacts "
                                         "WHERE id = ANY(:ids)"), {"ids": ids[:50]}).mappings()
        found = {r["id"]: r for r in rows}
    out = []
    for cid in ids[:50]:
        r = found.get(cid)
        name = " ".join(x for x in ((r["name"] or ""), (r["last_name"] or "")) if x).strip() if r else ""
        out.append({"id": cid, "name": name or f"Contact #{cid}", "post": (r["post"] or "") if r else ""})
    return out


def _similar(q: str, cols: set[str], deal: Any) -> dict[str, Any]:
    """Deals of the same pipeline (and source, when the deal has one), this deal excluded."""
    where = ["id <> :id"]
    params: dict[str, Any] = {"id": deal["id"]}
    basis = []
    if "category_id" in cols:
        where.append("coalesce(category_id, 0) = :cat")
        params["cat"] = deal["category_id"] or 0
        basis.append("pipeline")
    if "source_id" in cols and deal["source_id"]:
        where.append("source_id = :src")
        params["src"] = deal["source_id"]
        basis.append("source")
    sem = "stage_semantic_id" if "stage_semantic_id" in cols else "NULL"
    amount = "opportunity" if "opportunity" in cols else "NULL"
    timed = "moved_time" in cols and "created_time" in cols
    days = "avg(extract(epoch FROM moved_time - created_time)) FILTER (WHERE " + sem + " = 'S')" if timed else "NULL"
    row = db_session().execute(text(
        f"SELECT count(*) AS total, count(*) FILTER (WHERE {sem} = 'S') AS won, "
        f"count(*) FILTER (WHERE {sem} = 'F') AS lost, avg({amount}) FILTER (WHERE {sem} = 'S') AS won_avg, "
        f"avg({amount}) AS avg_amount, {days} AS won_seconds "
        f"FROM {q}.deals WHERE {' AND '.join(where)}"), params).mappings().one()
    closed = (row["won"] or 0) + (row["lost"] or 0)
    return {"basis": basis, "total": row["total"] or 0, "won": row["won"] or 0, "lost": row["lost"] or 0,
            "open": (row["total"] or 0) - closed,
            "won_share": round(100.0 * row["won"] / closed, 1) if closed else None,
            "won_avg": float(row["won_avg"]) if row["won_avg"] is not None else None,
            "avg_amount": float(row["avg_amount"]) if row["avg_amount"] is not None else None,
            "won_days": _days(float(row["won_seconds"])) if row["won_seconds"] is not None else None}
