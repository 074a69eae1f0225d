"""Logs are JSON lines with a request id and the portal, and never carry a token."""
import io
import json
import logging

from app import logs


def capture(app):
    stream = io.StringIO()
    logs.configure("INFO", stream)
    return stream


def test_json_line_with_request_id_and_masked_secrets(app, client):
    stream = capture(app)

    @app.get("/_log_probe")
    def probe():
        from flask import g

        g.member_id = "member-42"
        logging.getLogger("hub24.test").info(
            "refresh for %s with refresh_token=%s", "portal.bitrix24.com", "abcdef0123456789secret",
            extra={"auth": {"access_token": "tok_ABCDEFGHIJKLMNOP", "domain": "portal.bitrix24.com"},
                   "url": "https://portal.bitrix24.com/rest/1/x7k2mq9p4r8s/crm.deal.list"})
        return "ok"

    r = client.get("/_log_probe", headers={"X-Request-Id": "req-12345678"})
    assert r.headers["X-Request-Id"] == "req-12345678"
    line = [json.loads(x) for x in stream.getvalue().splitlines() if "hub24.test" in x][0]
    assert line["level"] == "INFO" and line["request_id"] == "req-12345678" and line["member_id"] == "member-42"
    assert "abcdef0123456789secret" not in json.dumps(line)
    assert line["message"].startswith("refresh for portal.bitrix24.com with refresh_token=abcd***")
    assert line["auth"]["access_token"] == "tok_***" and line["auth"]["domain"] == "portal.bitrix24.com"
    assert "x7k2mq9p4r8s" not in line["url"]


def test_mask_covers_common_shapes():
    text = ('AUTH_ID=0123456789abcdef&REFRESH_ID=fedcba9876543210 "application_token": "51856fefc120afa4b628cc82d3935cce" '
            'Authorization: Bearer eyJhbGciOi.abc.def client_secret=supersecretvalue1')
    masked = logs.mask(text)
    for secret in ("0123456789abcdef", "fedcba9876543210", "51856fefc120afa4b628cc82d3935cce", "eyJhbGciOi",
                   "supersecretvalue1"):
        assert secret not in masked
    assert "AUTH_ID=0123***" in masked


def test_exception_tracebacks_are_masked(app):
    stream = capture(app)
    try:
        raise RuntimeError("call failed for access_token=zzzzzzzzzzzzzzzz1")
    except RuntimeError:
        logging.getLogger("hub24.test").exception("boom")
    assert "zzzzzzzzzzzzzzzz1" not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()
