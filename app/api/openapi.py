"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of /api/v1 and /health (built in `openapi_spec`)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .openapi_spec import build_spec

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi_json():
    """The API description; public, like any API reference (it holds no portal data)."""
    return jsonify(build_spec(server_url=request.host_url.rstrip("/")))
