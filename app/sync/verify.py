"""Compare a portal's mirror with the portal itself, row by row and field by field (`flask sync verify`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from . import extract
from .engine import PortalSync
from .entities import EntitySpec
from .schema import ident
from .transform import to_row


@dataclass
class Comparison:
    entity: str
    portal_rows: int = 0
    mirror_rows: int = 0
    missing: list[int] = field(default_factory=list)  # in the portal, not in the mirror
    extra: list[int] = field(default_factory=list)  # in the mirror, gone from the portal
    different: dict[int, list[str]] = field(default_factory=dict)  # id -> fields that differ

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def summary(self) -> str:
        if self.ok:
            return f"{self.entity}: {self.portal_rows} rows, mirror identical"
        return (f"{self.entity}: portal {self.portal_rows}, mirror {self.mirror_rows}; missing {len(self.missing)}, "
                f"extra {len(self.extra)}, different {len(self.different)} (e.g. "
                f"{next(iter(self.different.items()), None)})")


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def compare(sync: PortalSync, spec: EntitySpec) -> Comparison:
    """Read every record of `spec` from the portal and compare with the mirror: raw records and typed columns."""
    cols = sync.prepare(spec)
    labels = sync.get_labels()
    conn = sync.session.connection()
    s, t = ident(sync.schema), ident(spec.table)
    col_names = [c.name for c in cols]
    select_cols = ", ".join(["id", "raw", *(ident(n) for n in col_names)])
    mirror = {r[0]: r for r in conn.execute(text(f"SELECT {select_cols} FROM {s}.{t}"))}
    out = Comparison(spec.name, mirror_rows=len(mirror))
    seen: set[int] = set()
    for chunk in extract.keyset_pages(sync.client, "crm.item.list", spec.list_params):
        for record in chunk.records:
            rid = int(record["id"])
            seen.add(rid)
            out.portal_rows += 1
            row = mirror.get(rid)
            if row is None:
                out.missing.append(rid)
                continue
            diffs = [k for k in set(record) | set(row[1]) if record.get(k) != row[1].get(k)]
            expected = json.loads(json.dumps(to_row(record, cols, labels), default=str))
            for i, name in enumerate(col_names):
                want, got = expected[name], _norm(row[2 + i])
                if _norm_cmp(want) != _norm_cmp(got):
                    diffs.append(name)
            if diffs:
                out.different[rid] = sorted(set(diffs))
    out.extra = sorted(i for i in mirror if i not in seen)
    return out


def _norm_cmp(value: Any) -> Any:
    """Compare numbers as numbers and times as instants, whatever their printed form."""
    if isinstance(value, list):
        return [_norm_cmp(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        from datetime import datetime

        try:
            return datetime.fromisoformat(value.replace(" ", "T", 1)).timestamp()
        except ValueError:
            return value
    return value
