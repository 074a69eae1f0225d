"""Test fixtures: real PostgreSQL and Redis, a transaction rolled back and a Redis database flushed per test.

The machine's services are used when TEST_DATABASE_URL / TEST_REDIS_URL are set; embedded ones
(under var/test) otherwise. Migrations run once per session on the test database.
"""
from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.db import make_engine
from devtools import services as embedded

pytest_plugins = ["tests.sandbox_fixtures"]

TEST_KEYS = (Fernet.generate_key().decode(), Fernet.generate_key().decode())


@pytest.fixture(scope="session")
def service_urls():
    # HUB24_TEST_SERVICES names the embedded services' directory under var/ (parallel runs need their own).
    name = os.environ.get("HUB24_TEST_SERVICES", "test")
    svc = embedded.from_env_or_embedded(name, "TEST_DATABASE_URL", "TEST_REDIS_URL", database="hub24_test")
    yield {"database": svc.database_url, "redis": svc.redis_url}
    svc.stop()


def base_config(service_urls: dict, **extra) -> dict:
    cfg = {
        "DATABASE_URL": service_urls["database"],
        "REDIS_URL": service_urls["redis"],
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "TOKEN_ENCRYPTION_KEY": TEST_KEYS[0],
        "APP_BASE_URL": "http://127.0.0.1:5999",
        "LOG_LEVEL": "WARNING",
        # Tests keep every write in one rolled-back transaction, so full syncs load on that one connection.
        "SYNC_LOADERS": 1,
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="session")
def engine(service_urls):
    eng = make_engine(service_urls["database"])
    from alembic import command

    from app.cli import alembic_config

    os.environ.setdefault("DATABASE_URL", service_urls["database"])
    cfg = alembic_config()
    app = create_app(base_config(service_urls, ENGINE=eng))
    with app.app_context():
        command.upgrade(cfg, "heads")
    yield eng
    eng.dispose()


@pytest.fixture()
def redis_conn(service_urls):
    conn = Redis.from_url(service_urls["redis"])
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture()
def app_overrides() -> dict:
    """Extra settings for the `app` fixture; a directory's conftest overrides this (e.g. to point at a sandbox)."""
    return {}


@pytest.fixture()
def app(engine, service_urls, redis_conn, app_overrides):
    """The app with its session bound to one connection whose transaction is rolled back after the test."""
    application = create_app(base_config(service_urls, ENGINE=engine, REDIS=redis_conn, **app_overrides))
    yield from rolled_back(application, engine)


def rolled_back(application, engine):
    """Run `application` (app context pushed) with its session on one connection whose transaction is
    rolled back afterwards; a generator for fixtures to `yield from`."""
    application.config["TESTING"] = True
    connection = engine.connect()
    outer = connection.begin()
    session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                          expire_on_commit=False))
    application.extensions["db.session"] = session
    with application.app_context():
        yield application
    session.remove()
    outer.rollback()
    connection.close()


@pytest.fixture()
def make_app(service_urls):
    """Build an extra app with settings overridden (for failure cases: a dead database, a dead Redis)."""

    def _make(**overrides):
        return create_app(base_config(service_urls, **overrides))

    return _make


@pytest.fixture()
def throwaway_database(service_urls):
    """The URL of a fresh, empty database of its own, dropped afterwards: for tests that must commit
    (migrations, make run, concurrent loaders) without leaking into the shared test database."""
    import uuid

    import psycopg2

    name = f"hub24_tmp_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(service_urls["database"])
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    base, _, query = service_urls["database"].partition("?")
    yield base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def db(app):
    return app.extensions["db.session"]()

