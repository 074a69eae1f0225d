"""The one switch that points b24pysdk at an OAuth server and, for the sandbox only, at plain-http portals.

b24pysdk 1.3.2 hard-codes two things Hub24 must be able to change:

* the OAuth server: `BitrixOAuthRequester._BASE_OAUTH_URL` (``https://oauth.bitrix24.tech``) and the two
  URLs derived from it at class creation, `_OAUTH_TOKEN_URL` (``<base>/oauth/token/``) and
  `_APP_INFO_URL` (``<base>/rest/app.info/``);
* the portal scheme: `_MethodCaller._base_url` returns ``https://{domain}/rest``. The sandbox serves
  plain http on loopback, so with ``B24_ALLOW_HTTP`` the property returns ``http://{domain}/rest``.

`configure()` sets both from settings; `create_app` calls it. The SDK keeps these as class attributes,
so the switch is process-wide: the last `configure()` wins. `tests/bitrix/test_sdk_switch.py` fails if
the internals touched here move or change shape in a new SDK release.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

_oauth_requester = importlib.import_module("b24pysdk.api.requesters.bitrix_oauth_requester")
_call_method = importlib.import_module("b24pysdk.api.callers.call_method")

OAuthRequester = _oauth_requester.BitrixOAuthRequester
MethodCaller = _call_method._MethodCaller

# The SDK's own definitions, kept so `configure()` can always start from them (and tests can check them).
SDK_BASE_URL_PROPERTY: property = MethodCaller.__dict__["_base_url"]
SDK_OAUTH_BASE_URL: str = OAuthRequester.__dict__["_BASE_OAUTH_URL"]


@dataclass(frozen=True)
class SdkSwitch:
    """What the switch is currently set to."""

    oauth_url: str
    allow_http: bool


_current = SdkSwitch(oauth_url=SDK_OAUTH_BASE_URL, allow_http=False)


def _http_base_url(self) -> str:
    # Plain http for every portal: only reachable with B24_ALLOW_HTTP (the sandbox, on loopback).
    return f"http://{self._domain}/rest"


def configure(oauth_url: str, allow_http: bool = False) -> SdkSwitch:
    """Point b24pysdk's OAuth requests at `oauth_url` and, when `allow_http`, its portal calls at http.

    `oauth_url` is the OAuth server's base (``https://oauth.bitrix.info``; the sandbox's is
    ``http://127.0.0.1:<port>/oauth``). Raises ValueError for an http OAuth URL without `allow_http`.
    """
    oauth_url = oauth_url.rstrip("/")
    if oauth_url.startswith("http://") and not allow_http:
        raise ValueError("a plain-http OAuth server needs allow_http (B24_ALLOW_HTTP=true, sandbox only)")
    if not oauth_url.startswith(("http://", "https://")):
        raise ValueError(f"OAuth server URL must start with https:// (got {oauth_url!r})")
    OAuthRequester._BASE_OAUTH_URL = oauth_url
    OAuthRequester._OAUTH_TOKEN_URL = f"{oauth_url}/oauth/token/"
    OAuthRequester._APP_INFO_URL = f"{oauth_url}/rest/app.info/"
    MethodCaller._base_url = property(_http_base_url) if allow_http else SDK_BASE_URL_PROPERTY
    global _current
    _current = SdkSwitch(oauth_url=oauth_url, allow_http=allow_http)
    return _current


def current() -> SdkSwitch:
    """The switch's current setting."""
    return _current


def init_app(app) -> None:
    """Apply the switch from the app's settings (`B24_OAUTH_URL`, `B24_ALLOW_HTTP`)."""
    settings = app.extensions["settings"]
    configure(settings.B24_OAUTH_URL, settings.B24_ALLOW_HTTP)
