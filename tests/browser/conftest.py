"""Browser tests: Hub24's pages inside the sandbox's portal page, in headless Debian Chromium (Playwright).

One live stack per session: a seeded sandbox portal, Hub24 served over HTTP on a free port with its own
(committed) database rows, installed through the sandbox's install page and finished by the page's own
`installFinish` through the portal page's frame protocol, then mirrored by running the queued initial
sync in this process. Everything it created (portal rows, the portal's schema and role) is removed at
the end. Chromium is the system one (/usr/bin/chromium, `make browser-deps` installs it); without it the
tests skip with a message saying so. Screenshots land in test-artifacts/browser/.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from redis import Redis
from werkzeug.serving import make_server

from sandbox import Portal as SandboxPortal
from sandbox.core import SandboxConfig
from sandbox.oauth import oauth_base_url
from sandbox.run import start_sandbox
from app import create_app
from tests.conftest import base_config

CHROMIUM = os.environ.get("HUB24_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
SCOPES = ["crm", "user", "department", "placement", "bizproc", "basic"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

pytestmark = pytest.mark.browser
logging.getLogger("werkzeug").setLevel(logging.WARNING)


from tests.sandbox_fixtures import AppDispatch as _Dispatch  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (Playwright driving the system browser); skips when either is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is missing: pip install -r requirements.txt")
    profile = tempfile.mkdtemp(prefix="hub24-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def page(chromium):
    p = chromium.new_page()
    p.set_default_timeout(20_000)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.js_errors = errors
    yield p
    p.close()


def shot(page, name: str, *, full_page: bool = True) -> Path:
    """Keep a screenshot under test-artifacts/browser/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def run_jobs(app, *queues: str) -> None:
    """Run every job queued on `queues` in this process (RQ burst), inside the app."""
    from app.jobs import AppSimpleWorker, get_queue

    conn = app.extensions["redis"]
    worker = AppSimpleWorker([get_queue(q, conn) for q in queues], connection=conn)
    worker.flask_app = app
    worker.work(burst=True)


@pytest.fixture(scope="session")
def browser_database(service_urls):
    """A database of the browser tests' own: the live stack commits (a real server, real workers), and
    nothing it writes may be seen by the rest of the suite, which shares the test database."""
    import uuid

    import psycopg2
    from alembic import command

    from app.cli import alembic_config
    from app.db import make_engine

    name = f"hub24_browser_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(service_urls["database"])
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    base, _, query = service_urls["database"].partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    eng = make_engine(url)
    app = create_app(base_config(service_urls, DATABASE_URL=url, ENGINE=eng))
    with app.app_context():
        command.upgrade(alembic_config(), "heads")
    yield url, eng
    eng.dispose()
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def live(browser_database, service_urls, chromium):
    """The live stack: {"app", "base", "handle", "portal" (sandbox.Portal), "client_id", "row_id", "url",
    "dispatch", "make_app"}.

    `url(placement, **params)` is the sandbox portal page showing that placement of Hub24; Hub24 runs
    without OPENAI_API_KEY (AI off) unless a test points `dispatch.target` at `make_app(OPENAI_...)`.
    """
    db_url, engine = browser_database
    handle = start_sandbox(SandboxConfig(data_size=60, limits="off", seed=23))
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    portal = SandboxPortal(handle.sandbox)
    reg = portal.register_app(name="Hub24", handler_url=base + "/", install_url=base + "/install", scopes=SCOPES)
    redis = Redis.from_url(service_urls["redis"])
    redis.flushdb()
    def make_app(**extra):
        return create_app(base_config(service_urls, DATABASE_URL=db_url, ENGINE=engine, REDIS=redis, APP_BASE_URL=base,
                                      B24_CLIENT_ID=reg["client_id"], B24_CLIENT_SECRET=reg["client_secret"],
                                      B24_ALLOW_HTTP="true", B24_OAUTH_URL=oauth_base_url(handle.sandbox), **extra))

    app = make_app()
    dispatch.target = app
    main_port = handle.base_url.rsplit(":", 1)[1]

    def url(placement: str, **params) -> str:
        from urllib.parse import urlencode

        q = {"client_id": reg["client_id"], **{k: str(v) for k, v in params.items()}}
        return f"http://127.0.0.1:{main_port}/sandbox/portal/{placement}?{urlencode(q)}"

    info = {"app": app, "base": base, "handle": handle, "portal": portal, "client_id": reg["client_id"], "url": url,
            "dispatch": dispatch, "make_app": make_app}
    row_id = None
    try:
        delivery = portal.install(reg["client_id"], mode="frame")["delivery"]
        assert delivery["http_status"] == 200, delivery["response"][:400]
        with app.app_context():
            from app.db import db_session
            from app.models import Portal

            row_id = db_session().query(Portal.id).filter_by(member_id=portal.member_id).scalar()
        info["row_id"] = row_id
        # Finish the installation the way an administrator does: the install page in the portal page.
        page = chromium.new_page()
        page.goto(url("DEFAULT"))
        page.wait_for_function("window.sandboxPortal && window.sandboxPortal.installFinished", timeout=30_000)
        info["install_frame_text"] = page.frame_locator("#app-frame").locator("#state").inner_text()
        info["install_messages"] = page.evaluate("window.sandboxPortal.messages.map(m => m.command)")
        shot(page, "00-install-finished")
        page.close()
        with app.app_context():
            run_jobs(app, "sync")
        yield info
    finally:
        dispatch.target = None
        server.shutdown()
        _cleanup(app, engine, row_id)
        handle.stop()
        redis.flushdb()
        redis.close()


def _cleanup(app, engine, row_id: int | None) -> None:
    if row_id is None:
        return
    from sqlalchemy import text

    from app.sync.schema import drop_portal_schema

    with engine.begin() as conn:
        try:
            drop_portal_schema(conn, row_id)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on to the rows
            logging.getLogger(__name__).warning("could not drop portal schema %s: %s", row_id, exc)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM portals WHERE id = :id"), {"id": row_id})
