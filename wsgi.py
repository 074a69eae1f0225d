"""WSGI entry point: `gunicorn wsgi:app`. A configuration error stops start-up with one clear line."""
import sys

from app import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"hub24: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
