"""The official b24pysdk against the sandbox: typed calls, as_list, as_list_fast, call_batch, errors.

The SDK builds ``https://{domain}/rest``; the one patch is the scheme of that base URL
(`_MethodCaller._base_url`). A guard test fails if that SDK internal moves.
"""
from __future__ import annotations

import importlib

import pytest
import requests
from b24pysdk import BitrixWebhook, Client
from b24pysdk import errors as sdk_errors

sdk_call_method = importlib.import_module("b24pysdk.api.callers.call_method")


@pytest.fixture(autouse=True)
def http_scheme(monkeypatch):
    prop = sdk_call_method._MethodCaller.__dict__["_base_url"]
    assert isinstance(prop, property)
    monkeypatch.setattr(sdk_call_method._MethodCaller, "_base_url",
                        property(lambda self: prop.fget(self).replace("https://", "http://", 1)))


def _client(portal, hook_url) -> Client:
    token = hook_url.split("/rest/", 1)[1]
    return Client(BitrixWebhook(domain=portal.domain, webhook_token=token))


def test_sdk_internal_we_patch_still_exists():
    assert "https://{self._domain}/rest" in open(sdk_call_method.__file__, encoding="utf-8").read()


def test_typed_calls(portal, hook_url):
    client = _client(portal, hook_url)
    deal = client.crm.deal.get(bitrix_id=1).result
    assert deal["ID"] == "1"
    new_id = client.crm.deal.add(fields={"TITLE": "From SDK", "OPPORTUNITY": 1234.5}).result
    assert client.crm.deal.get(bitrix_id=new_id).result["OPPORTUNITY"] == "1234.50"
    item = client.crm.item.get(entity_type_id=2, bitrix_id=new_id).result
    assert item["item"]["title"] == "From SDK"


def test_as_list_and_as_list_fast_return_every_record(portal, hook_url):
    client = _client(portal, hook_url)
    ids = [int(d["ID"]) for d in client.crm.deal.list(select=["ID"]).as_list().result]
    expected = sorted(portal.crm.store(2).ids)
    assert sorted(ids) == expected and len(ids) == len(set(ids))
    fast = [int(d["ID"]) for d in client.crm.deal.list(select=["ID"]).as_list_fast().result]
    assert fast == expected
    items = [i["id"] for i in client.crm.item.list(entity_type_id=3, select=["id"]).as_list_fast().result]
    assert items == sorted(portal.crm.store(3).ids)


def test_call_batch(portal, hook_url):
    client = _client(portal, hook_url)
    res = client.call_batch({"a": client.crm.deal.get(bitrix_id=2), "b": client.crm.contact.get(bitrix_id=3)}).result
    assert res.result["a"]["ID"] == "2" and res.result["b"]["ID"] == "3"


def test_documented_errors_surface_as_sdk_exceptions(sandbox_handle, portal, hook_url):
    client = _client(portal, hook_url)
    with pytest.raises(sdk_errors.BitrixAPIBadRequest):
        client.crm.deal.get(bitrix_id=10 ** 9).result
    with pytest.raises(sdk_errors.BitrixAPINotFound):
        _raw(hook_url, "crm.no.such.method")
    narrow = portal.webhook_url(portal.add_webhook(1, ["user"])).split("/rest/", 1)[1]
    with pytest.raises(sdk_errors.BitrixAPIInsufficientScope):
        Client(BitrixWebhook(domain=portal.domain, webhook_token=narrow)).crm.deal.get(bitrix_id=1).result
    with pytest.raises(sdk_errors.BitrixAPIError) as exc:
        Client(BitrixWebhook(domain=portal.domain, webhook_token="1/wrongcode")).crm.deal.get(bitrix_id=1).result
    assert exc.value.error == "NO_AUTH_FOUND"


def _raw(hook_url, method):
    """Parse a raw answer with the SDK's own response parser (for methods without a typed wrapper)."""
    from b24pysdk.api.requesters._utils.parse_response import parse_response
    return parse_response(requests.post(hook_url + method, json={}, timeout=10))


def test_limit_errors_surface_as_sdk_exceptions(fresh_sandbox):
    h = fresh_sandbox(limits="standard", operating_limit=0.001)
    token = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"])).split("/rest/", 1)[1]
    client = Client(BitrixWebhook(domain=h.portal.domain, webhook_token=token))
    client.crm.deal.list().result  # spends more than the tiny budget
    with pytest.raises(sdk_errors.BitrixAPIOperationTimeLimit):
        client.crm.deal.list().result
    h.portal.limiter._level = h.portal.limiter.threshold
    from b24pysdk.api.requesters._utils.parse_response import parse_response
    with pytest.raises(sdk_errors.BitrixAPIQueryLimitExceeded):
        parse_response(requests.post(f"{h.base_url}/rest/{token}/crm.deal.get", json={"id": 1}, timeout=10))
