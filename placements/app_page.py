"""The app page (`POST /`, PLACEMENT=DEFAULT): the portal's home of Hub24."""
from __future__ import annotations

NAME = "app"
ACCEPTS = ("DEFAULT",)
TEMPLATE = "placements/app_page.html"


def context(frame, portal) -> dict:
    return {"title": "Hub24"}
