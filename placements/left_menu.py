"""LEFT_MENU: the main-menu item, opening the dashboards."""
from __future__ import annotations

from .app_page import dashboard_context

NAME = "left_menu"
ACCEPTS = ("LEFT_MENU",)
TEMPLATE = "placements/app_page.html"


def context(frame, portal, user) -> dict:
    return dashboard_context("Hub24 dashboards", portal)
