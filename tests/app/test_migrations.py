"""The migration history has one head, and upgrade/downgrade work on an empty database."""
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.cli import alembic_config
from app.db import sqlalchemy_url
from app.models import Base


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


def test_upgrade_then_downgrade_to_base(make_app, throwaway_database):
    app = make_app(DATABASE_URL=throwaway_database)
    eng = create_engine(sqlalchemy_url(throwaway_database))
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


def test_models_match_migrations(make_app, throwaway_database):
    """Autogenerate finds nothing to add: the models and the migration history agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    app = make_app(DATABASE_URL=throwaway_database)
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    eng = create_engine(sqlalchemy_url(throwaway_database))
    with eng.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    eng.dispose()
    assert diff == []
