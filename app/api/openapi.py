"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of /api/v1 and /health.

Most of it is `openapi_spec`; a blueprint module may describe its own routes next to its views with a
module-level ``OPENAPI_PATHS = {"/api/v1/...": {"get": {...}}}`` (same shape as the spec's `paths`), which
is merged in over `openapi_spec`'s entry for that path. `tests/readapi/test_openapi.py` fails while any
route of the app is described nowhere.
"""
from __future__ import annotations

import sys
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

from .openapi_spec import build_spec

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


def blueprint_paths(app: Flask) -> dict[str, Any]:
    """`OPENAPI_PATHS` of every registered blueprint's module."""
    out: dict[str, Any] = {}
    for blueprint in app.blueprints.values():
        module = sys.modules.get(blueprint.import_name)
        paths = getattr(module, "OPENAPI_PATHS", None)
        if isinstance(paths, dict):
            out.update(paths)
    return out


def full_spec(app: Flask, server_url: str = "") -> dict[str, Any]:
    """The description the app serves: `openapi_spec` plus the blueprints' own `OPENAPI_PATHS`."""
    spec = build_spec(server_url=server_url)
    spec["paths"].update(blueprint_paths(app))
    return spec


@bp.get("/openapi.json")
def openapi_json():
    """The API description; public, like any API reference (it holds no portal data)."""
    return jsonify(full_spec(current_app, server_url=request.host_url.rstrip("/")))
