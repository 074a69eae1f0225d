"""REST_APP_URI: Hub24's settings slider (opened by link /marketplace/view/<app>/?params[...])."""
from __future__ import annotations

NAME = "settings"
ACCEPTS = ("REST_APP_URI",)
TEMPLATE = "placements/settings.html"


def context(frame, portal) -> dict:
    section = str(frame.options.get("section", "general"))
    return {"title": "Hub24 settings", "section": section if section.isalnum() and len(section) < 40 else "general"}
