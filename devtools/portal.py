"""The demo portal for `make run`: a sandbox with demo data, Hub24 registered in it as a local app,
installed the way an administrator installs it, and its CRM mirrored."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Callable

import requests

from app.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIENT_ID = "local.hub24demo.0000000000000001"
DEMO_DATA_SIZE = 2000


def _member_id() -> str:
    # Stable per checkout, so every `make run` meets the same portal row in a persistent database.
    return hashlib.sha1(f"hub24-demo:{ROOT}".encode()).hexdigest()[:32]


def _admin(base: str, op: str, **params) -> dict:
    r = requests.post(f"{base}/sandbox/{op}", json=params, timeout=60)
    if r.status_code >= 400:
        raise RuntimeError(f"sandbox {op} failed: {r.status_code} {r.text[:300]}")
    return r.json()


def start_demo_portal(children, env: dict[str, str], port: int, say: Callable[[str], None]) -> dict[str, str]:
    """Start the sandbox with demo data and register Hub24 in it; return the settings Hub24 needs."""
    from .run import wait_http

    say(f"starting the sandbox portal ({DEMO_DATA_SIZE} demo deals) on port {port}")
    children.start("sandbox", [sys.executable, "-m", "sandbox", "--port", str(port), "--data-size", str(DEMO_DATA_SIZE),
                               "--limits", "standard", "--member-id", _member_id()], env)
    base = f"http://127.0.0.1:{port}"
    if not wait_http(f"{base}/sandbox/portals", 60, children=children):
        raise RuntimeError("the sandbox did not start")
    secret = hashlib.sha1(f"{env['SECRET_KEY']}:demo-client".encode()).hexdigest()
    app_base = env["APP_BASE_URL"]
    _admin(base, "register_app", name="Hub24", handler_url=f"{app_base}/", install_url=f"{app_base}/install",
           scopes=load_manifest()["scopes"], client_id=DEMO_CLIENT_ID, client_secret=secret)
    return {"SANDBOX_URL": base, "B24_CLIENT_ID": DEMO_CLIENT_ID, "B24_CLIENT_SECRET": secret,
            "B24_OAUTH_URL": f"{base}/oauth", "B24_ALLOW_HTTP": "true"}


def after_start(env: dict[str, str], base_url: str, say: Callable[[str], None]) -> str | None:
    """Install Hub24 into the sandbox portal and return the portal page that shows Hub24 as Bitrix24 does.

    The install goes through ONAPPINSTALL (the shape an app without an install page gets), so the demo
    is active at once without a browser finishing an install page; Hub24 then binds its events,
    placements and robots and starts mirroring the CRM in its worker.
    """
    base = env.get("SANDBOX_URL")
    if not base:
        return None
    _admin(base, "install", client_id=DEMO_CLIENT_ID, mode="event")
    _admin(base, "flush", timeout=30)  # the portal delivers callbacks from its own queue
    sent = [d for d in _admin(base, "deliveries", client_id=DEMO_CLIENT_ID, event="ONAPPINSTALL")]
    status = sent[-1].get("http_status") if sent else None
    if status != 200:
        say(f"installing Hub24 into the sandbox portal answered {status}; see the web log")
        return None
    say(f"Hub24 is installed in the sandbox portal {base} (member_id {_member_id()}); the CRM mirror is filling")
    return f"{base}/sandbox/portal/LEFT_MENU?client_id={DEMO_CLIENT_ID}&user_id=1"
