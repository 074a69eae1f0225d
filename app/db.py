"""SQLAlchemy 2.0 wiring: one engine and one scoped session per app, bound in `init_app`.

Models import `Base` from `app.models.base`; code uses `db_session()` inside an app context (web
requests, CLI commands and RQ jobs all run in one). The session is removed at the end of every
request/app context so no connection leaks between requests or jobs.
"""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker


def sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg2 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    """Create the app's engine (pre-ping so a restarted PostgreSQL does not fail the next request).

    JIT is off for the app's sessions: the loader's wide INSERT ... SELECT has inlined expressions whose
    estimated cost makes PostgreSQL spend seconds compiling a statement that runs in milliseconds.
    """
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10, future=True,
                         connect_args={"options": "-c jit=off"})


def init_app(app: Flask, engine: Engine | None = None) -> None:
    """Bind an engine and a scoped session factory to `app` (a test may pass its own engine)."""
    engine = engine or make_engine(app.config["DATABASE_URL"])
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["db.engine"] = engine
    app.extensions["db.session"] = scoped_session(factory)

    @app.teardown_appcontext
    def _remove_session(exc: BaseException | None) -> None:
        app.extensions["db.session"].remove()


def db_session() -> Session:
    """The current app's session (scoped to the app context)."""
    return current_app.extensions["db.session"]()


def engine() -> Engine:
    return current_app.extensions["db.engine"]
