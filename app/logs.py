"""Structured logging: one JSON object per line, with request id and portal, secrets masked.

Every record passes `mask_secrets`, which blanks token-shaped values (OAuth tokens, application
tokens, webhook codes in URLs, bearer tokens, passwords) whether they sit in the message, its arguments
or `extra` fields. Code should still never log a secret on purpose; this is the safety net.
"""
from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

_SECRET_KEYS = r"(?:access_token|refresh_token|application_token|client_secret|password|auth_id|refresh_id|" \
               r"auth\[[a-z_]+\]|token|secret|api_key)"
_KV = re.compile(rf"(?i)([\"']?\b{_SECRET_KEYS}[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}}]+)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_WEBHOOK = re.compile(r"(/rest/\d+/)([A-Za-z0-9]{6,})(/)")
_SECRET_FIELD = re.compile(rf"(?i)^{_SECRET_KEYS}$|token|secret|password")


def mask(text: str) -> str:
    """Blank secrets in free text, keeping the first four characters as a hint."""
    text = _KV.sub(lambda m: m.group(1) + _hint(m.group(2)), text)
    text = _BEARER.sub(lambda m: m.group(1) + "***", text)
    return _WEBHOOK.sub(lambda m: m.group(1) + "***" + m.group(3), text)


def _hint(value: str) -> str:
    return (value[:4] + "***") if len(value) > 8 else "***"


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return _hint(value) if _SECRET_FIELD.search(key) else mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    return value


class ContextFilter(logging.Filter):
    """Adds request id and portal member_id, then masks secrets in the whole record."""

    _std = set(vars(logging.makeLogRecord({})))

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            record.member_id = getattr(g, "member_id", None) or getattr(record, "member_id", None)
        record.msg = mask(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in self._std and key not in {"message", "request_id"}:
                setattr(record, key, _mask_value(key, value))
        if record.exc_info:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def configure(level: str = "INFO", stream=None) -> None:
    """Send every logger's output as JSON lines to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"levelname": "level", "asctime": "ts", "name": "logger"}))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_hub24", False):
            root.removeHandler(h)
    handler._hub24 = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask) -> None:
    """Request ids on every request (taken from X-Request-Id when sane) and echoed in the response."""
    configure(app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo(response):
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        return response
