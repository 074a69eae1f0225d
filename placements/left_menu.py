"""LEFT_MENU: the main-menu item, opening the dashboards."""
from __future__ import annotations

NAME = "left_menu"
ACCEPTS = ("LEFT_MENU",)
TEMPLATE = "placements/app_page.html"


def context(frame, portal) -> dict:
    return {"title": "Hub24 dashboards"}
