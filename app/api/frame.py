"""GET /api/v1/frame/session: who the frame token in `Authorization: Bearer` belongs to."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from ..bitrix.verify import frame_auth_required

bp = Blueprint("frame_api", __name__, url_prefix="/api/v1/frame")


@bp.get("/session")
@frame_auth_required
def session():
    """The portal and placement of the calling page, and when its token expires."""
    return jsonify(member_id=g.portal.member_id, domain=g.portal.domain, placement=g.frame.placement,
                   user_id=g.frame.user_id, status=g.portal.status.value, expires_at=g.frame.expires_at)
