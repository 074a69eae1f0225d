"""WSGI app and HTTP serving for the sandbox.

One Flask app serves every port of the sandbox. The main port carries the OAuth server (`/oauth/`),
the admin API (`/sandbox/`) and the first portal's REST API (`/rest/`). Each further portal listens on
a port of its own, so its domain is `host:port` exactly as a real portal's domain is a host name: the
official SDK builds `https://{domain}/rest/...` and needs nothing else. The REST blueprint picks the
portal from the request's Host header.
"""
from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from .core import Sandbox


def create_wsgi_app(sandbox: Sandbox) -> Flask:
    """Build the Flask app that answers for every portal and the OAuth server of `sandbox`."""
    from . import admin, oauth, rest

    app = Flask("sandbox")
    app.config["SANDBOX"] = sandbox
    app.url_map.strict_slashes = False
    app.register_blueprint(rest.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(__import__("sandbox.llm", fromlist=["bp"]).bp)  # OpenAI-compatible /v1, scripted answers
    __import__("sandbox.portal_page", fromlist=["init_app"]).init_app(app)  # placements in iframes, for browsers
    return app


class ServerThread:
    """A threaded werkzeug server on one port, running in a daemon thread."""

    def __init__(self, app: Flask, host: str, port: int):
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"sandbox:{self.port}", daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
