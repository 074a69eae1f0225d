"""The app page (`POST /`, PLACEMENT=DEFAULT): the portal's home of Hub24, the dashboard."""
from __future__ import annotations

from flask import current_app

NAME = "app"
ACCEPTS = ("DEFAULT",)
TEMPLATE = "placements/app_page.html"


def dashboard_context(title: str) -> dict:
    """What the dashboard template needs besides the frame: whether AI can answer at all."""
    return {"title": title, "ai_configured": bool(current_app.config.get("OPENAI_API_KEY"))}


def context(frame, portal, user) -> dict:
    return dashboard_context("Hub24")
