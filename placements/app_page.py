"""The app page (`POST /`, PLACEMENT=DEFAULT): the portal's home of Hub24, the dashboard."""
from __future__ import annotations

from flask import current_app

NAME = "app"
ACCEPTS = ("DEFAULT",)
TEMPLATE = "placements/app_page.html"


def dashboard_context(title: str, portal) -> dict:
    """What the dashboard template needs besides the frame: whether AI can answer (key set, portal switch)."""
    from app.db import db_session
    from app.models.dashboards import PortalSettings

    row = db_session().get(PortalSettings, portal.id)
    return {"title": title, "ai_configured": bool(current_app.config.get("OPENAI_API_KEY")),
            "ai_enabled": row.ai_enabled if row is not None else True}


def context(frame, portal, user) -> dict:
    return dashboard_context("Hub24", portal)
