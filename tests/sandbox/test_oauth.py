"""The OAuth server: code flow, refresh (single use), errors, app.info, and b24pysdk against it."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from sandbox import SandboxError
from tests.sandbox.helpers_s2 import fixture, handle, installed, portal, receiver  # noqa: F401


def oauth_base(handle) -> str:
    return handle.base_url + "/oauth"


def token_get(handle, **params):
    return requests.get(oauth_base(handle) + "/oauth/token/", params=params, timeout=10)


def test_code_flow_redirects_with_documented_query_and_grants_tokens(handle, portal, installed):
    app = installed["app"]
    resp = requests.get(f"http://{portal.domain}/oauth/authorize/",
                        params={"client_id": app["client_id"], "state": "xyz"}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlparse(resp.headers["Location"]).query).items()}
    assert set(query) == set(fixture("oauth_authorize_redirect.json")["query"])
    assert query["state"] == "xyz" and query["member_id"] == portal.member_id and query["domain"] == portal.domain
    assert query["scope"] == "crm,placement,bizproc,user"

    got = token_get(handle, grant_type="authorization_code", client_id=app["client_id"],
                    client_secret=app["client_secret"], code=query["code"])
    assert got.status_code == 200
    body = got.json()
    for key, value in fixture("oauth_authorization_code_response.json").items():
        assert key in body and type(body[key]) is type(value), key
    assert body["server_endpoint"] == oauth_base(handle) + "/rest/"
    assert body["client_endpoint"] == f"http://{portal.domain}/rest/"
    assert body["status"] == "L" and body["user_id"] == 1
    # a code works once
    again = token_get(handle, grant_type="authorization_code", client_id=app["client_id"],
                      client_secret=app["client_secret"], code=query["code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_authorize_refuses_an_app_not_installed_without_redirect(portal, receiver):
    app = portal.register_app(handler_url=receiver.url + "/")
    resp = requests.get(f"http://{portal.domain}/oauth/authorize/", params={"client_id": app["client_id"]},
                        allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_refresh_token_is_single_use_and_matches_fixture(handle, installed):
    app, tokens = installed["app"], installed["tokens"]
    params = dict(grant_type="refresh_token", client_id=app["client_id"], client_secret=app["client_secret"],
                  refresh_token=tokens["refresh_token"])
    first = token_get(handle, **params)
    assert first.status_code == 200
    body = first.json()
    for key, value in fixture("oauth_refresh_response.json").items():
        assert key in body and type(body[key]) is type(value), key
    assert body["refresh_token"] != tokens["refresh_token"]
    reuse = token_get(handle, **params)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("params, error", [
    ({}, "invalid_request"),
    ({"grant_type": "password", "client_id": "x"}, "invalid_request"),
    ({"grant_type": "refresh_token", "client_id": "nope", "client_secret": "s", "refresh_token": "r"},
     "invalid_client"),
])
def test_token_endpoint_errors_are_oauth_errors(handle, params, error):
    resp = token_get(handle, **params)
    assert 400 <= resp.status_code < 500
    assert resp.json()["error"] == error and resp.json()["error_description"]


def test_wrong_secret_is_invalid_client_and_payment_required(handle, portal, installed):
    app, tokens = installed["app"], installed["tokens"]
    bad = token_get(handle, grant_type="refresh_token", client_id=app["client_id"], client_secret="wrong",
                    refresh_token=tokens["refresh_token"])
    assert bad.json()["error"] == "invalid_client"
    portal.set_state(payment_required=True)
    paid = token_get(handle, grant_type="refresh_token", client_id=app["client_id"],
                     client_secret=app["client_secret"], refresh_token=tokens["refresh_token"])
    assert paid.json() == fixture("oauth_error_payment_required.json")


def test_expired_access_token_gets_401_then_refresh_works(handle, portal, installed):
    app, tokens = installed["app"], installed["tokens"]
    assert portal.call("app.info", auth=tokens["access_token"])["result"]["INSTALLED"] is True
    portal.expire_tokens()
    with pytest.raises(SandboxError) as exc:
        portal.call("app.info", auth=tokens["access_token"])
    assert exc.value.status == 401 and exc.value.code == "expired_token"
    fresh = token_get(handle, grant_type="refresh_token", client_id=app["client_id"],
                      client_secret=app["client_secret"], refresh_token=tokens["refresh_token"]).json()
    assert portal.call("app.info", auth=fresh["access_token"])["result"]["CODE"] == app["client_id"]


def test_oauth_server_app_info_shape_parsed_by_sdk(handle, portal, installed):
    from b24pysdk.api.responses.bitrix_app_info_response import B24AppInfoResult

    resp = requests.get(oauth_base(handle) + "/rest/app.info/", params={"auth": installed["auth"]}, timeout=10)
    assert resp.status_code == 200
    info = B24AppInfoResult.from_dict(resp.json()["result"])
    assert info.client_id == installed["client_id"]
    assert info.install.member_id == portal.member_id and info.install.domain == portal.domain
    assert info.install.installed is True and info.user_id == 1
    bad = requests.get(oauth_base(handle) + "/rest/app.info", params={"auth": "nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"


def test_b24pysdk_refreshes_after_expired_token(handle, portal, installed, monkeypatch):
    """The official SDK, pointed at the sandbox (scheme + OAuth base URL), refreshes and retries."""
    from b24pysdk import BitrixApp, BitrixToken
    import importlib

    cm_module = importlib.import_module("b24pysdk.api.callers.call_method")
    oauth_module = importlib.import_module("b24pysdk.api.requesters.bitrix_oauth_requester")

    base = oauth_base(handle)
    R = oauth_module.BitrixOAuthRequester
    monkeypatch.setattr(R, "_OAUTH_TOKEN_URL", f"{base}/oauth/token/")
    monkeypatch.setattr(R, "_APP_INFO_URL", f"{base}/rest/app.info/")
    monkeypatch.setattr(cm_module._MethodCaller, "_base_url",
                        property(lambda self: f"http://{self._domain}/rest"))
    app, tokens = installed["app"], installed["tokens"]
    bitrix_app = BitrixApp(client_id=app["client_id"], client_secret=app["client_secret"])
    token = BitrixToken(domain=portal.domain, auth_token=tokens["access_token"],
                        refresh_token=tokens["refresh_token"], bitrix_app=bitrix_app)
    portal.expire_tokens()
    result = token.call_method("app.info")["result"]
    assert result["CODE"] == app["client_id"]
    assert token.auth_token != tokens["access_token"] and token.refresh_token != tokens["refresh_token"]
