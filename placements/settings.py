"""REST_APP_URI: Hub24's settings slider (opened by link /marketplace/view/<app>/?params[...]).

Administrators only, as the portal says (`profile` → ADMIN with the frame's AUTH_ID); anyone else gets
the refusal page (placements/__init__.py checks ADMIN_ONLY before calling `context`).
"""
from __future__ import annotations

NAME = "settings"
ACCEPTS = ("REST_APP_URI",)
TEMPLATE = "placements/settings.html"
ADMIN_ONLY = True
SECTIONS = ("general", "sync", "ai", "connections")


def context(frame, portal, user) -> dict:
    section = str(frame.options.get("section", "general"))
    return {"title": "Hub24 settings", "section": section if section in SECTIONS else "general"}
