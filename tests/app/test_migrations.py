"""The migration history has one head, and upgrade/downgrade work on an empty database."""
import uuid

import psycopg2
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.cli import alembic_config
from app.db import sqlalchemy_url
from app.models import Base


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


@pytest.fixture()
def empty_database(service_urls):
    admin = service_urls["database"]
    name = f"hub24_mig_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    yield url
    conn.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    conn.close()


def test_upgrade_then_downgrade_to_base(make_app, empty_database):
    app = make_app(DATABASE_URL=empty_database)
    eng = create_engine(sqlalchemy_url(empty_database))
    with app.app_context():
        command.upgrade(alembic_config(), "head")
        tables = set(inspect(eng).get_table_names())
        assert set(Base.metadata.tables) <= tables
        command.downgrade(alembic_config(), "base")
    insp = inspect(eng)
    assert set(insp.get_table_names()) <= {"alembic_version"}
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM pg_type WHERE typname IN ('portal_status','connection_kind')").scalar() == 0
    eng.dispose()


def test_models_match_migrations(make_app, empty_database):
    """Autogenerate finds nothing to add: the models and the migration history agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    app = make_app(DATABASE_URL=empty_database)
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    eng = create_engine(sqlalchemy_url(empty_database))
    with eng.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    eng.dispose()
    assert diff == []
