"""Alembic environment: app tables only (schema `public`); per-portal CRM schemas are managed by app/sync.

The URL comes from the running app (`flask db upgrade`) or, when Alembic is called directly, from
DATABASE_URL.
"""
from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.db import sqlalchemy_url
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    try:
        from flask import current_app

        return current_app.config["DATABASE_URL"]
    except RuntimeError:  # outside an app context
        url = os.environ.get("DATABASE_URL")
        if not url:
            raise SystemExit("DATABASE_URL is required to run migrations")
        return url


def _include(obj, name, type_, reflected, compare_to) -> bool:
    # Only public-schema app tables are ours; portal schemas belong to the sync engine.
    return getattr(obj, "schema", None) in (None, "public") if type_ == "table" else True


def run_offline() -> None:
    context.configure(url=sqlalchemy_url(_url()), target_metadata=target_metadata, literal_binds=True,
                      include_object=_include)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(sqlalchemy_url(_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, include_object=_include)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
