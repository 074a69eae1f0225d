"""Hub24: a Bitrix24 data-and-automation app. `create_app()` is the one entry point."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, jsonify
from redis import Redis
from werkzeug.exceptions import HTTPException

from .config import ConfigError, Settings

__all__ = ["create_app", "ConfigError"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app.

    Settings come from the environment (`Settings.from_env`); `config` overrides individual keys
    (tests pass their database and Redis URLs). Raises ConfigError naming the first bad variable.
    """
    import os

    env = dict(os.environ)
    overrides = dict(config or {})
    for key, value in list(overrides.items()):
        if isinstance(value, str) and key.isupper():
            env[key] = value
    settings = Settings.from_env(env)

    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.update(settings.as_flask_config())
    app.config.update({k: v for k, v in overrides.items() if not isinstance(v, str)})
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024  # no inbound payload of Bitrix24's is larger
    app.extensions["settings"] = settings

    from . import db, logs
    from .crypto import SecretBox

    logs.init_app(app)
    db.init_app(app, engine=overrides.get("ENGINE"))
    app.extensions["secret_box"] = SecretBox(settings.TOKEN_ENCRYPTION_KEY)
    app.extensions["redis"] = overrides.get("REDIS") or Redis.from_url(settings.REDIS_URL)

    from .bitrix import sdk

    sdk.init_app(app)  # the one switch: OAuth server URL and (sandbox only) plain http for b24pysdk

    from . import api, cli

    api.init_app(app)
    cli.init_app(app)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    """JSON errors for the API and callbacks; a clear message, never a traceback."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return jsonify(error="internal_error", message="Something went wrong on our side; it has been logged."), 500
