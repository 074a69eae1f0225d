"""Re-encrypt stored secrets under the newest key (`flask keys rotate`)."""
from __future__ import annotations

from sqlalchemy import Column, text
from sqlalchemy.orm import DeclarativeBase

from .crypto import EncryptedText, secret_box
from .db import db_session
from .models import Base


def encrypted_columns(base: type[DeclarativeBase] = Base) -> list[Column]:
    """Every column of every mapped table stored with EncryptedText."""
    return [c for t in base.metadata.sorted_tables for c in t.columns if isinstance(c.type, EncryptedText)]


def rotate_all() -> int:
    """Rotate every encrypted value in place, reading and writing raw ciphertext; returns the count."""
    box = secret_box()
    session = db_session()
    count = 0
    for col in encrypted_columns():
        table, pk = col.table.name, list(col.table.primary_key.columns)[0].name
        rows = session.execute(text(f'SELECT "{pk}", "{col.name}" FROM "{table}" WHERE "{col.name}" IS NOT NULL'))
        for key, value in rows.all():
            session.execute(text(f'UPDATE "{table}" SET "{col.name}" = :v WHERE "{pk}" = :k'),
                            {"v": box.rotate(value), "k": key})
            count += 1
    session.commit()
    return count
