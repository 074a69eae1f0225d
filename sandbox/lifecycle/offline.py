"""Offline events: the per-app queue and `event.offline.get|clear|error|list` (PROTOCOL.md §5.5).

The queue keeps only the latest state per object: a change to an object already waiting (and not
reserved) refreshes its record. `event.offline.get` with `clear=0` reserves a batch under a
`process_id`; `event.offline.clear` confirms it, `event.offline.error` marks records as failed.
"""
from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from ..errors import RestError, access_denied
from ..registry import Call, Page, method
from .auth import auth_block
from .delivery import Delivery, deliverer
from .model import EventHandler, Installation, OfflineEvent

PAGE = 50


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def push(inst: Installation, h: EventHandler, name: str, data: dict, user_id: int | None) -> None:
    """Queue (or refresh) the record of one object's change; notify ONOFFLINEEVENT handlers."""
    from .install import callbacks

    cb = callbacks(inst.portal)
    fields = data.get("FIELDS", data) if isinstance(data, dict) else {}
    key = f"{name}:{fields.get('ENTITY_TYPE_ID', '')}:{fields.get('ID', '')}"
    now = time.time()
    for rec in inst.offline_events:
        if (rec.object_key == key and rec.auth_connector == h.auth_connector and not rec.process_id
                and not rec.error):
            rec.timestamp, rec.data = now, data
            break
    else:
        rid = cb.new_id()
        inst.offline_events.append(OfflineEvent(
            rid, name, key, now, data, {"user_id": str(user_id)} if user_id else False, str(rid), h.auth_connector))
    _notify(inst, now)


def _notify(inst: Installation, now: float) -> None:
    for h in [h for h in inst.handlers if h.event == "ONOFFLINEEVENT" and not h.offline]:
        min_timeout = float((h.options or {}).get("minTimeout", 1) or 0)
        last = h.options.get("_last_notice", 0.0)
        if min_timeout and now - last < min_timeout:
            continue
        h.options["_last_notice"] = now
        payload = {"event": "ONOFFLINEEVENT", "event_handler_id": str(h.id), "data": [],
                   "ts": str(int(now)), "auth": auth_block(inst, h.auth_type or inst.installed_by)}
        deliverer(inst.portal.sandbox).submit(Delivery(0, inst.portal.member_id, inst.client_id, "event",
                                                       "ONOFFLINEEVENT", h.handler, payload))


def _row(rec: OfflineEvent, full: bool = False) -> dict[str, Any]:
    out = {"ID": str(rec.id), "TIMESTAMP_X": _iso(rec.timestamp), "EVENT_NAME": rec.event_name,
           "EVENT_DATA": rec.data, "EVENT_ADDITIONAL": rec.additional, "MESSAGE_ID": rec.message_id}
    if full:
        out.update({"PROCESS_ID": rec.process_id, "ERROR": "1" if rec.error else "0"})
    return out


_OPS = (">=", "<=", "!=", ">", "<", "=", "!")


def _value(rec: OfflineEvent, fld: str) -> Any:
    return {"ID": rec.id, "TIMESTAMP_X": rec.timestamp, "EVENT_NAME": rec.event_name,
            "MESSAGE_ID": rec.message_id, "PROCESS_ID": rec.process_id, "ERROR": int(rec.error)}.get(fld)


def _coerce(fld: str, value: Any) -> Any:
    if fld in ("ID", "ERROR"):
        return int(value)
    if fld == "TIMESTAMP_X":
        return datetime.fromisoformat(str(value)).timestamp() if not str(value).replace(".", "").isdigit() else float(value)
    if fld == "EVENT_NAME":
        return str(value).upper()
    return str(value)


def _matches(rec: OfflineEvent, flt: Any) -> bool:
    if not flt:
        return True
    if not isinstance(flt, dict):
        raise RestError(400, "ERROR_ARGUMENT", "Argument 'filter' must be an array", argument="filter")
    for raw_key, want in flt.items():
        op = next((o for o in _OPS if str(raw_key).startswith(o)), "=")
        fld = str(raw_key)[len(op):].upper() if str(raw_key).startswith(op) else str(raw_key).upper()
        have = _value(rec, fld)
        if have is None:
            raise RestError(400, "ERROR_ARGUMENT", f"Unknown filter field {fld}", argument="filter")
        try:
            w = _coerce(fld, want)
        except (TypeError, ValueError):
            raise RestError(400, "ERROR_ARGUMENT", f"Wrong filter value for {fld}", argument="filter")
        ok = {"=": have == w, "!": have != w, "!=": have != w, ">": have > w, "<": have < w,
              ">=": have >= w, "<=": have <= w}[op]
        if not ok:
            return False
    return True


def _ordered(recs: list[OfflineEvent], order: Any, default: str) -> list[OfflineEvent]:
    order = order if isinstance(order, dict) and order else {default: "ASC"}
    for fld, direction in reversed(list(order.items())):
        recs = sorted(recs, key=lambda r: _value(r, str(fld).upper()) or 0,
                      reverse=str(direction).upper() == "DESC")
    return recs


def _admin_app(call: Call) -> Installation:
    from .events import app_installation

    inst = app_installation(call)
    if not call.caller.is_admin:
        raise access_denied("Access denied!")
    return inst


def _ids(value: Any) -> set[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        value = [value]
    return {str(v) for v in value}


@method("event.offline.get", app_only=True)
def offline_get(call: Call) -> dict:
    """Read (clear=1, default) or reserve (clear=0) a batch of offline events."""
    inst = _admin_app(call)
    try:
        limit = max(1, min(int(call.param("limit", PAGE) or PAGE), 1000))
        clear = int(call.param("clear", 1)) != 0
        want_error = int(call.param("error", 0) or 0) != 0
    except (TypeError, ValueError):
        raise RestError(400, "ERROR_ARGUMENT", "Wrong numeric argument")
    process_id = str(call.param("process_id", "") or "")
    connector = str(call.param("auth_connector", "") or "")
    with call.portal.lock:
        pool = [r for r in inst.offline_events
                if r.auth_connector == connector and r.error == want_error and r.process_id == process_id
                and _matches(r, call.param("filter"))]
        batch = _ordered(pool, call.param("order"), "TIMESTAMP_X")[:limit]
        rows = [_row(r) for r in batch]
        if clear:
            gone = {id(r) for r in batch}
            inst.offline_events[:] = [r for r in inst.offline_events if id(r) not in gone]
            return {"process_id": None, "events": rows}
        pid = process_id or secrets.token_hex(16)
        for r in batch:
            r.process_id = pid
        return {"process_id": pid, "events": rows}


@method("event.offline.clear", app_only=True)
def offline_clear(call: Call) -> bool:
    """Confirm a reserved batch (all of it, or only `id[]` / `message_id[]`)."""
    inst = _admin_app(call)
    pid = str(call.param("process_id", "") or "")
    if not pid:
        raise RestError(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty", argument="process_id")
    ids, mids = _ids(call.param("id")), _ids(call.param("message_id"))
    with call.portal.lock:
        inst.offline_events[:] = [
            r for r in inst.offline_events
            if not (r.process_id == pid and (ids is None or str(r.id) in ids)
                    and (mids is None or r.message_id in mids))]
    return True


@method("event.offline.error", app_only=True)
def offline_error(call: Call) -> bool:
    """Mark records of a reserved batch as failed (read back with `error=1`)."""
    inst = _admin_app(call)
    pid = str(call.param("process_id", "") or "")
    if not pid:
        raise RestError(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty", argument="process_id")
    mids = _ids(call.param("message_id"))
    with call.portal.lock:
        for r in inst.offline_events:
            if r.process_id == pid and (mids is None or r.message_id in mids):
                r.error, r.process_id = True, ""
    return True


@method("event.offline.list", app_only=True)
def offline_list(call: Call) -> Page:
    """Read the queue without changing it (pages of 50, `total`/`next`)."""
    inst = _admin_app(call)
    try:
        start = max(0, int(call.param("start", 0) or 0))
    except (TypeError, ValueError):
        start = 0
    connector = str(call.param("auth_connector", "") or "")
    with call.portal.lock:
        pool = [r for r in inst.offline_events if r.auth_connector == connector and _matches(r, call.param("filter"))]
        pool = _ordered(pool, call.param("order"), "ID")
        items = [_row(r, full=True) for r in pool[start:start + PAGE]]
    nxt = start + PAGE if start + PAGE < len(pool) else None
    return Page(items, len(pool), nxt)
