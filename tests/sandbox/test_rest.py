"""The REST dispatcher: URLs, encodings, auth, envelope and documented errors."""
from __future__ import annotations

import requests

TIME_KEYS = {"start", "finish", "duration", "processing", "date_start", "date_finish", "operating",
             "operating_reset_at"}


def test_url_forms_and_case_insensitive_names(hook_url):
    for suffix in ("crm.deal.get", "crm.deal.get.json", "CRM.Deal.Get", "crm.deal.get/"):
        r = requests.get(hook_url + suffix, params={"id": 3}, timeout=10)
        assert r.status_code == 200, suffix
        assert r.json()["result"]["ID"] == "3"


def test_envelope_has_full_time_block_and_paging(rest, portal):
    n = len(portal.crm.store(2))
    status, body = rest("crm.deal.list", {"select": ["ID"]})
    assert status == 200
    assert set(body["time"]) == TIME_KEYS
    assert len(body["result"]) == 50 and body["total"] == n and body["next"] == 50
    status, last = rest("crm.deal.list", {"select": ["ID"], "start": n - 50})
    assert len(last["result"]) == 50 and "next" not in last and last["total"] == n


def test_start_minus_one_has_no_count(rest):
    _, body = rest("crm.deal.list", {"select": ["ID"], "order": {"ID": "ASC"}, "filter": {">ID": 100},
                                     "start": -1})
    assert body["total"] == 0 and "next" not in body
    assert [int(r["ID"]) for r in body["result"]] == list(range(101, 151))


def test_oauth_token_in_query_form_and_json(sandbox_handle, portal):
    sb = sandbox_handle.sandbox
    access, _ = sb.issue_tokens(portal, "local.test", 1, ["crm", "user"])
    url = f"http://{portal.domain}/rest/user.current"
    assert requests.get(url, params={"auth": access.token}, timeout=10).json()["result"]["ID"] == "1"
    assert requests.post(url, data={"auth": access.token}, timeout=10).json()["result"]["ID"] == "1"
    assert requests.post(url, json={"auth": access.token}, timeout=10).json()["result"]["ID"] == "1"


def test_php_bracket_form_and_multipart_decode_to_nested(hook_url, rest):
    form = {"fields[NAME]": "Пётр", "fields[PHONE][0][VALUE]": "+100", "fields[PHONE][0][VALUE_TYPE]": "WORK",
            "fields[EMAIL][0][VALUE]": "p@example.com"}
    r = requests.post(hook_url + "crm.contact.add", data=form, timeout=10)
    assert r.status_code == 200
    cid = r.json()["result"]
    _, got = rest("crm.contact.get", {"id": cid})
    assert got["result"]["NAME"] == "Пётр"
    assert got["result"]["PHONE"][0]["VALUE"] == "+100"
    r = requests.post(hook_url + "crm.contact.update", files={"id": (None, str(cid)),
                                                              "fields[LAST_NAME]": (None, "Multipart")},
                      timeout=10)
    assert r.json()["result"] is True
    _, got = rest("crm.contact.get", {"id": cid})
    assert got["result"]["LAST_NAME"] == "Multipart"
    r = requests.get(hook_url + "crm.deal.list", params={"filter[@ID][]": ["1", "2"], "select[]": "ID"},
                     timeout=10)
    assert sorted(x["ID"] for x in r.json()["result"]) == ["1", "2"]


def test_auth_errors(sandbox_handle, portal):
    sb = sandbox_handle.sandbox
    url = f"http://{portal.domain}/rest/crm.deal.list"
    r = requests.post(url, json={}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "NO_AUTH_FOUND")
    r = requests.post(url, json={"auth": "nope"}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "NO_AUTH_FOUND")
    r = requests.post(f"http://{portal.domain}/rest/1/badcode/crm.deal.list", json={}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "NO_AUTH_FOUND")
    access, _ = sb.issue_tokens(portal, "local.test", 1, ["user"])
    r = requests.post(url, json={"auth": access.token}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")
    access.expires_at = 0
    r = requests.post(url, json={"auth": access.token}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "expired_token")


def test_unknown_method_and_bad_input_are_bitrix_errors(rest, hook_url):
    status, body = rest("crm.nothing.here")
    assert (status, body["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    status, body = rest("crm.deal.list", {"filter": "x"})
    assert (status, body) == (400, {"error": "", "error_description": "Parameter 'filter' must be array."})
    status, body = rest("crm.deal.get", {"id": "abc"})
    assert status == 400 and body["error"] == ""
    status, body = rest("crm.deal.get", {"id": 999999})
    assert (status, body["error_description"]) == (400, "Not found")
    r = requests.post(hook_url + "crm.deal.list", data=b"{not json", headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 400 and "error" in r.json()
    for params in ({"fields": []}, {"fields": {"OPPORTUNITY": {"x": 1}}}, {"fields": {"BEGINDATE": [1]}}, {"fields": {"BEGINDATE": "not a date"}}):
        status, body = rest("crm.deal.add", params)
        assert status == 400 and "error" in body, params
    status, body = rest("crm.item.list", {"entityTypeId": 2, "filter": {"NOPE": 1}})
    assert (status, body["error"]) == (400, "INVALID_ARG_VALUE")
    status, body = rest("crm.item.list", {"entityTypeId": 999})
    assert (status, body["error"]) == (400, "NOT_FOUND")
    status, body = rest("crm.item.get", {"entityTypeId": "x", "id": 1})
    assert status == 400


def test_old_domain_redirects_keeping_path(sandbox_handle, portal, hook_url):
    old = "old-portal.example:1"
    portal.old_domains.append(old)
    try:
        path = hook_url.split(portal.domain, 1)[1] + "crm.deal.get?id=1"
        r = requests.get(f"http://{portal.domain}{path}", headers={"Host": old}, allow_redirects=False, timeout=10)
        assert r.status_code == 302
        assert r.headers["Location"] == f"http://{portal.domain}{path}"
    finally:
        portal.old_domains.remove(old)


def test_portal_flags(fresh_sandbox):
    h = fresh_sandbox(limits="off")
    url = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"])) + "crm.deal.list"
    h.portal.deleted = True
    assert requests.post(url, json={}, timeout=10).json()["error"] == "PORTAL_DELETED"
    h.portal.deleted, h.portal.payment_required = False, True
    assert requests.post(url, json={}, timeout=10).json()["error"] == "PAYMENT_REQUIRED"


def test_admin_only_and_app_only_methods(fresh_sandbox):
    from sandbox.registry import METHODS, method

    @method("sandbox.test.adminonly", admin_only=True)
    def _admin(call):
        return True

    @method("sandbox.test.apponly", app_only=True)
    def _app(call):
        return True
    try:
        h = fresh_sandbox(limits="off")
        user_hook = h.portal.webhook_url(h.portal.add_webhook(5, ["crm"]))  # user 5 is not an admin
        admin_hook = h.portal.webhook_url(h.portal.add_webhook(1, ["crm"]))
        r = requests.post(user_hook + "sandbox.test.adminonly", json={}, timeout=10)
        assert (r.status_code, r.json()["error"]) == (403, "ACCESS_DENIED")
        assert requests.post(admin_hook + "sandbox.test.adminonly", json={}, timeout=10).json()["result"] is True
        r = requests.post(admin_hook + "sandbox.test.apponly", json={}, timeout=10)
        assert (r.status_code, r.json()["error"]) == (403, "WRONG_AUTH_TYPE")
    finally:
        METHODS.pop("sandbox.test.adminonly")
        METHODS.pop("sandbox.test.apponly")


def test_department_get_sort_param_is_not_a_filter():
    from sandbox.core import SandboxConfig
    from sandbox.run import start_sandbox
    import requests

    handle = start_sandbox(SandboxConfig(data_size=10, limits="off"))
    try:
        hook = handle.portal.add_webhook(1, ["department"])
        url = handle.portal.webhook_url(hook) + "department.get"
        everything = requests.post(url, json={}, timeout=10).json()["result"]
        sorted_desc = requests.post(url, json={"sort": "ID", "order": "DESC"}, timeout=10).json()["result"]
        assert len(sorted_desc) == len(everything) > 1
        assert [d["ID"] for d in sorted_desc] == sorted((d["ID"] for d in everything), key=int, reverse=True)
        by_sort = requests.post(url, json={"SORT": everything[0]["SORT"]}, timeout=10).json()["result"]
        assert all(d["SORT"] == everything[0]["SORT"] for d in by_sort)
    finally:
        handle.stop()
