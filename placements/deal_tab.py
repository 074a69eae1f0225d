"""CRM_DEAL_DETAIL_TAB: a tab in the deal card (PLACEMENT_OPTIONS carries the deal's ID)."""
from __future__ import annotations

from app.bitrix.payload import BadPayload

from .insights import deal_insights

NAME = "deal_tab"
ACCEPTS = ("CRM_DEAL_DETAIL_TAB",)
TEMPLATE = "placements/deal_tab.html"


def context(frame, portal, user) -> dict:
    deal_id = str(frame.options.get("ID", ""))
    if not deal_id.isdigit() or len(deal_id) > 18:
        raise BadPayload("PLACEMENT_OPTIONS.ID must be the deal's numeric id")
    return {"title": f"Deal {deal_id}", "deal_id": int(deal_id), "insights": deal_insights(portal.id, int(deal_id))}
