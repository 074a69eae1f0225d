"""HTTP API blueprints: /health, /api/v1/..., the portal callbacks and (from `placements/`) the frame pages."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    import placements

    from . import lifecycle
    from .frame import bp as frame_bp
    from .health import bp as health_bp
    from .sync import bp as sync_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(frame_bp)
    app.register_blueprint(sync_bp)
    from .readapi import register_blueprints as register_read_api

    register_read_api(app)  # /api/v1/crm, /stats, /users, /departments, /openapi.json
    app.register_blueprint(__import__("app.api.dashboards", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("app.api.charts", fromlist=["bp"]).bp)  # /api/v1/charts/..., /api/v1/schema.md
    lifecycle.init_app(app)
    placements.init_app(app)
