"""The SDK switch (app/bitrix/sdk.py) and a guard that fails when the b24pysdk internals it touches move."""
from __future__ import annotations

import importlib
import inspect

import pytest

from app.bitrix import sdk

oauth_mod = importlib.import_module("b24pysdk.api.requesters.bitrix_oauth_requester")
call_mod = importlib.import_module("b24pysdk.api.callers.call_method")


def test_sdk_internals_the_switch_touches_are_where_we_expect():
    R = oauth_mod.BitrixOAuthRequester
    # class attributes read at request time, in the methods that build the OAuth URLs
    for name in ("_BASE_OAUTH_URL", "_OAUTH_TOKEN_URL", "_APP_INFO_URL"):
        assert name in R.__dict__, f"BitrixOAuthRequester.{name} moved"
    assert sdk.SDK_OAUTH_BASE_URL == "https://oauth.bitrix24.tech"
    src = inspect.getsource(R)
    assert "self._get(url=self._OAUTH_TOKEN_URL" in src and "self._get(url=self._APP_INFO_URL" in src
    # the portal URL is built by _MethodCaller._base_url (a property over self._domain), used by _url
    prop = sdk.SDK_BASE_URL_PROPERTY
    assert isinstance(prop, property)
    assert "https://{self._domain}/rest" in inspect.getsource(prop.fget)
    assert "self._base_url" in inspect.getsource(call_mod._MethodCaller._url.fget)
    # batch and list callers go through call_method / the token's call_method, so one property covers all
    batch_src = inspect.getsource(importlib.import_module("b24pysdk.api.callers.call_batch"))
    assert "call_method" in batch_src


def _url_for(domain: str) -> str:
    caller = call_mod._MethodCaller(domain=domain, auth_token="x", is_webhook=False, api_method="profile")
    return caller._url


def test_configure_points_oauth_and_scheme(app):
    try:
        sdk.configure("http://127.0.0.1:9/oauth", allow_http=True)
        R = oauth_mod.BitrixOAuthRequester
        assert R._OAUTH_TOKEN_URL == "http://127.0.0.1:9/oauth/oauth/token/"
        assert R._APP_INFO_URL == "http://127.0.0.1:9/oauth/rest/app.info/"
        assert _url_for("p.example:8080") == "http://p.example:8080/rest/profile.json"
        sdk.configure("https://oauth.bitrix.info", allow_http=False)
        assert R._OAUTH_TOKEN_URL == "https://oauth.bitrix.info/oauth/token/"
        assert _url_for("p.example") == "https://p.example/rest/profile.json"
        with pytest.raises(ValueError):
            sdk.configure("http://127.0.0.1:9/oauth", allow_http=False)
    finally:
        sdk.init_app(app)


def test_create_app_applies_settings(make_app):
    make_app(B24_OAUTH_URL="http://127.0.0.1:7/oauth", B24_ALLOW_HTTP="true")
    assert sdk.current().oauth_url == "http://127.0.0.1:7/oauth" and sdk.current().allow_http
    assert _url_for("h:1") == "http://h:1/rest/profile.json"
    make_app()
    assert sdk.current() == sdk.SdkSwitch("https://oauth.bitrix.info", False)
    assert _url_for("h") == "https://h/rest/profile.json"
