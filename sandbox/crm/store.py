"""An in-memory table of one CRM entity type with Bitrix24 list semantics.

Records are dicts keyed by storage key (see `fields.py`) held in ``records[id]``; ``ids`` is the
sorted list of ids, so a keyset page (``>ID`` + ``order ID ASC`` + ``start=-1``) bisects instead of
scanning. Filters follow the documented prefixes: ``>``, ``>=``, ``<``, ``<=``, ``=``, ``!``/``!=``,
``@``, ``!@``, ``%``, ``!%``, ``=%``/``%=`` (explicit ``%`` wildcards), plus ``crm.item``'s OR groups.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .fields import EntityKind, Field, MULTI_TYPES, to_native

PREFIXES = ("!@", "!=%", "!%=", "!%", "!=", ">=", "<=", "=%", "%=", ">", "<", "=", "!", "@", "%")
PAGE = 50


class FilterError(ValueError):
    """A filter names an unknown field or carries a value of the wrong type."""


@dataclass
class ListResult:
    rows: list[dict]
    total: int | None
    next: int | None
    scanned: int  # rows examined: the cost model charges for them
    keyset: bool


def split_prefix(key: str) -> tuple[str, str]:
    for p in PREFIXES:
        if key.startswith(p):
            return p, key[len(p):]
    return "", key


def _like(pattern: str) -> re.Pattern:
    parts = [re.escape(x) for x in pattern.split("%")]
    return re.compile("^" + ".*".join(parts) + "$", re.I | re.S)


def _cmp_value(f: Field, v: Any) -> Any:
    if f.type == "crm_multifield":
        return str(v)
    if f.type in ("integer", "user", "crm_company", "crm_contact", "crm_lead", "crm_category", "employee",
                  "enumeration", "crm_quote") and v in ("", None, False):
        return 0  # PHP casts an empty string to 0
    try:
        out = to_native(f, v) if not f.multiple else to_native(f, [v])[0] if v not in ("", None) else None
    except (TypeError, ValueError, IndexError) as exc:
        raise FilterError(f"Invalid value for filter field {f.legacy or f.key}") from exc
    return out


def compile_filter(kind: EntityKind, flt: dict, legacy: bool) -> tuple[list[Callable[[dict], bool]], dict]:
    """Compile a request filter into predicates; also return keyset bounds on the id ({op: value})."""
    preds: list[Callable[[dict], bool]] = []
    id_bounds: dict[str, int] = {}
    for raw_key, value in flt.items():
        key = str(raw_key)
        if isinstance(value, dict) and (key.isdigit() or "logic" in {str(k).lower() for k in value}):
            preds.append(_or_group(kind, value, legacy))
            continue
        prefix, name = split_prefix(key)
        f = kind.fields.resolve(name, legacy)
        if f is None:
            if legacy:
                continue  # legacy list methods ignore unknown filter fields
            raise FilterError(f"Invalid filter: field '{name}' is not allowed in filter")
        preds.append(_predicate(f, prefix, value))
        if f.key == "id" and prefix in (">", ">=", "<", "<=") and not isinstance(value, (list, dict)):
            id_bounds[prefix] = _cmp_value(f, value) or 0
    return preds, id_bounds


def _or_group(kind: EntityKind, group: dict, legacy: bool) -> Callable[[dict], bool]:
    logic = str(next((v for k, v in group.items() if str(k).lower() == "logic"), "AND")).upper()
    subs = []
    for k, sub in group.items():
        if str(k).lower() == "logic":
            continue
        if not isinstance(sub, dict):
            sub = {k: sub}
        preds, _ = compile_filter(kind, sub, legacy)
        subs.append(preds)
    if logic == "OR":
        return lambda r: any(all(p(r) for p in ps) for ps in subs)
    return lambda r: all(all(p(r) for p in ps) for ps in subs)


def _getter(f: Field) -> Callable[[dict], list]:
    if f.type == "crm_multifield":
        code = f.legacy
        return lambda r: [m[3] for m in r.get("fm", ()) if m[1] == code]
    key = f.key
    if f.multiple:
        return lambda r: list(r.get(key) or ())
    return lambda r: [r.get(key)]


def _predicate(f: Field, prefix: str, value: Any) -> Callable[[dict], bool]:
    get = _getter(f)
    neg = prefix.startswith("!")
    op = prefix.lstrip("!") or "="
    if op in ("%", "=%", "%="):
        pat = _like(str(value) if op != "%" else f"%{value}%")

        def like(r: dict) -> bool:
            hit = any(v is not None and pat.match(str(v)) for v in get(r))
            return hit != neg
        return like
    if isinstance(value, dict):
        value = list(value.values())
    if op in ("@", "=") and isinstance(value, list) or op == "@":
        vals = value if isinstance(value, list) else [value]
        wanted = {_cmp_value(f, v) for v in vals}

        def member(r: dict) -> bool:
            return any(v in wanted for v in get(r)) != neg
        return member
    target = _cmp_value(f, value)
    if op == "=":
        if target in (None, ""):
            return lambda r: all(v in (None, "", 0, []) for v in get(r) or [None]) != neg
        return lambda r: (target in get(r)) != neg
    import operator
    fn = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}[op]

    def compare(r: dict) -> bool:
        try:
            return any(v is not None and fn(v, target) for v in get(r))
        except TypeError:
            return False
    return compare


class EntityStore:
    """Records of one entity type."""

    def __init__(self, kind: EntityKind, fm_counter: Callable[[], int]):
        self.kind = kind
        self.records: dict[int, dict] = {}
        self.ids: list[int] = []
        self.next_id = 1
        self._fm_counter = fm_counter

    def __len__(self) -> int:
        return len(self.records)

    def insert(self, record: dict) -> dict:
        """Store a record (assigning ``id`` when missing) and return it."""
        rid = record.get("id") or self.next_id
        record["id"] = rid
        self.next_id = max(self.next_id, rid + 1)
        if rid not in self.records:
            if not self.ids or rid > self.ids[-1]:
                self.ids.append(rid)
            else:
                bisect.insort(self.ids, rid)
        self.records[rid] = record
        return record

    def delete(self, rid: int) -> dict | None:
        rec = self.records.pop(rid, None)
        if rec is not None:
            i = bisect.bisect_left(self.ids, rid)
            if i < len(self.ids) and self.ids[i] == rid:
                del self.ids[i]
        return rec

    # -- multi-fields ------------------------------------------------------------------------
    def apply_multifields(self, record: dict, code: str, values: Any, camel: bool = False) -> None:
        """Apply PHONE/EMAIL/... values with the documented update semantics.

        An element with ``ID`` and a value changes it; ``ID`` with ``DELETE=Y``, an empty value or
        nothing else deletes it; an element without ``ID`` is added.
        """
        fm = record.setdefault("fm", [])
        items = values.values() if isinstance(values, dict) else values if isinstance(values, list) else []
        for el in items:
            if not isinstance(el, dict):
                continue
            el = {str(k).upper(): v for k, v in el.items()}
            vid = el.get("ID")
            value = el.get("VALUE")
            vtype = str(el.get("VALUE_TYPE") or "WORK").upper()
            if vid not in (None, ""):
                try:
                    vid = int(vid)
                except (TypeError, ValueError):
                    continue
                cur = next((m for m in fm if m[0] == vid and m[1] == code), None)
                if cur is None:
                    continue
                if str(el.get("DELETE", "")).upper() == "Y" or not value:
                    fm.remove(cur)
                else:
                    cur[2], cur[3] = str(el.get("VALUE_TYPE") or cur[2]).upper(), str(value)
            elif value not in (None, ""):
                fm.append([self._fm_counter(), code, vtype, str(value)])
        self.refresh_has_flags(record)

    @staticmethod
    def refresh_has_flags(record: dict) -> None:
        codes = {m[1] for m in record.get("fm", ())}
        if "hasPhone" in record or "fm" in record:
            record["hasPhone"] = "Y" if "PHONE" in codes else "N"
            record["hasEmail"] = "Y" if "EMAIL" in codes else "N"
            record["hasImol"] = "Y" if "IM" in codes else "N"

    # -- listing -----------------------------------------------------------------------------
    def list(self, flt: dict, order: dict, start: int, legacy: bool) -> ListResult:
        """Select a page: filter, order, paging of 50 (``start=-1``: no count, keyset friendly)."""
        preds, bounds = compile_filter(self.kind, flt or {}, legacy)
        keys = self._order_keys(order or {}, legacy)
        count = start != -1
        offset = max(start, 0)
        by_id_only = not keys or (len(keys) == 1 and keys[0][0].key == "id")
        desc = bool(keys) and keys[0][1]
        if by_id_only and not count:
            rows, scanned = self._keyset(preds, bounds, desc, offset + PAGE)
            return ListResult(rows[offset:], None, None, scanned, "<" in bounds or ">" in bounds
                              or ">=" in bounds or "<=" in bounds)
        ids: Iterable[int] = reversed(self.ids) if desc and by_id_only else self.ids
        recs = self.records
        matched = [recs[i] for i in ids if all(p(recs[i]) for p in preds)] if preds else [recs[i] for i in ids]
        scanned = len(self.ids)
        if not by_id_only:
            for f, rev in reversed(keys):
                matched.sort(key=lambda r, k=f.key: _sort_key(r.get(k)), reverse=rev)
        page = matched[offset:offset + PAGE]
        total = len(matched) if count else None
        nxt = offset + PAGE if count and len(matched) > offset + PAGE else None
        return ListResult(page, total, nxt, scanned, False)

    def _keyset(self, preds: list, bounds: dict, desc: bool, limit: int) -> tuple[list[dict], int]:
        ids = self.ids
        lo, hi = 0, len(ids)
        if ">" in bounds:
            lo = max(lo, bisect.bisect_right(ids, bounds[">"]))
        if ">=" in bounds:
            lo = max(lo, bisect.bisect_left(ids, bounds[">="]))
        if "<" in bounds:
            hi = min(hi, bisect.bisect_left(ids, bounds["<"]))
        if "<=" in bounds:
            hi = min(hi, bisect.bisect_right(ids, bounds["<="]))
        rng = range(hi - 1, lo - 1, -1) if desc else range(lo, hi)
        out, scanned, recs = [], 0, self.records
        for i in rng:
            scanned += 1
            r = recs[ids[i]]
            if all(p(r) for p in preds):
                out.append(r)
                if len(out) >= limit:
                    break
        return out, scanned

    def _order_keys(self, order: dict, legacy: bool) -> list[tuple[Field, bool]]:
        out = []
        if not isinstance(order, dict):
            raise FilterError("Parameter 'order' must be array.")
        for name, direction in order.items():
            f = self.kind.fields.resolve(str(name), legacy)
            if f is None:
                if legacy:
                    continue
                raise FilterError(f"Invalid order: field '{name}' is not allowed in order")
            out.append((f, str(direction).upper() == "DESC"))
        return out


def _sort_key(v: Any) -> tuple:
    if v is None:
        return (0, 0)
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v).lower())


def multifield_codes() -> tuple[str, ...]:
    return MULTI_TYPES
