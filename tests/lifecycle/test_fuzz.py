"""Fuzzed install, event, robot and placement POSTs: never a 500; a 4xx changes nothing; forged is always 4xx.

Seeded mutations of documented shapes: fields dropped, extra fields added, values replaced by groups (and
groups by values), malformed bracket keys, oversized values, junk and non-UTF-8 bodies, JSON of the wrong
shape. The database (every lifecycle table) and the queues are compared before and after each refusal.
"""
from __future__ import annotations

import copy
import json
import random
from urllib.parse import quote

import pytest
from rq import Queue
from sqlalchemy import text

from tests.lifecycle.conftest import fixture, php_pairs, post_form

TABLES = ("portals", "portal_tokens", "portal_events", "robot_invocations")
ROUNDS = 40


def snapshot(db, redis_conn) -> tuple:
    db.expire_all()
    rows = tuple(tuple(sorted(db.execute(text(f"SELECT t::text FROM {t} t")).scalars().all())) for t in TABLES)
    queues = tuple(Queue(q, connection=redis_conn).count for q in ("events", "integrations", "maintenance"))
    return rows, queues


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    yield prefix


def mutate(body: dict, rng: random.Random) -> tuple[str, object]:
    """One mutation of `body`; returns (kind, new body or raw form string)."""
    body = copy.deepcopy(body)
    paths = [p for p in _paths(body) if p]
    kind = rng.choice(["drop", "extra", "group", "scalar", "oversize", "badkey", "junk", "json", "deep", "many"])
    path = rng.choice(paths)
    parent = body
    for k in path[:-1]:
        parent = parent[k]
    if kind == "drop":
        parent.pop(path[-1], None)
    elif kind == "extra":
        parent[rng.choice(["x", "EXTRA", "auth2", "data"]) + str(rng.randint(0, 9))] = rng.choice(["1", "", "Ω", "{}"])
    elif kind == "group":
        parent[path[-1]] = {"0": "a", "nested": {"x": "y"}}
    elif kind == "scalar":
        parent[path[-1]] = rng.choice(["", "0", "null", "[]", "%00"])
    elif kind == "oversize":
        parent[path[-1]] = "A" * rng.choice([600, 70_000, 3_000_000])
    elif kind == "badkey":
        pairs = php_pairs(body) + [(rng.choice(["auth[member_id", "a]b[", "[x]", "auth[][", "data[FIELDS]]"]), "1")]
        return kind, "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    elif kind == "junk":
        return kind, rng.choice([b"\xff\xfe\x00garbage", b"%%%%", b"auth=1&auth[member_id]=2", b"=&=&&"])
    elif kind == "json":
        return "json", rng.choice(["[1,2]", "null", "{bad", json.dumps({"auth": ["x"], "event": {"a": 1}}),
                                   json.dumps(body)[:-1]])
    elif kind == "deep":
        parent[path[-1]] = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": "1"}}}}}}}}}
    elif kind == "many":
        parent.update({f"k{i}": "v" for i in range(2500)})
    return kind, body


def send(client, path: str, payload, query=None):
    if isinstance(payload, dict):
        return post_form(client, path, payload, query)
    if isinstance(payload, str) and payload[:1] in "[n{" and not payload.startswith("n="):
        try:
            json.loads(payload)
            return client.post(path, query_string=query or {}, data=payload, content_type="application/json")
        except ValueError:
            return client.post(path, query_string=query or {}, data=payload, content_type="application/json")
    return client.post(path, query_string=query or {}, data=payload, content_type="application/x-www-form-urlencoded")


def _event(installed):
    body = fixture("event_oncrmdealupdate.json")
    body["auth"].update(member_id=installed["portal"].member_id,
                        application_token=installed["portal"].installation(installed["client_id"])["application_token"])
    return "/events", body, None


def _robot(installed):
    token = installed["portal"].installation(installed["client_id"])["application_token"]
    return "/robots/hub24_deal_transfer", {
        "workflow_id": "wf-fuzz", "code": "hub24_deal_transfer", "document_id": ["crm", "CCrmDocumentDeal", "DEAL_1"],
        "document_type": ["crm", "CCrmDocumentDeal", "DEAL"], "event_token": "tok", "use_subscription": "Y",
        "properties": {"partner": "p"}, "ts": "1700000000",
        "auth": {"member_id": installed["portal"].member_id, "application_token": token}}, None


def _placement(installed):
    body = dict(fixture("placement_post_crm_deal_detail_tab.json"))
    query = {k: body.pop(k) for k in ("DOMAIN", "PROTOCOL", "LANG", "APP_SID")}
    query.update(DOMAIN=installed["portal"].domain, PROTOCOL="0")
    body.update(member_id=installed["portal"].member_id,
                APPLICATION_TOKEN=installed["portal"].installation(installed["client_id"])["application_token"])
    return "/placements/deal_tab", body, query


def _install_event(installed):
    body = fixture("onappinstall_event.json")
    body["auth"].update(member_id=installed["portal"].member_id, domain=installed["portal"].domain,
                        access_token="not-a-real-token-" + "x" * 16)
    return "/install", body, None


def _install_frame(installed):
    body = dict(fixture("install_post.json"))
    query = {k: body.pop(k) for k in ("DOMAIN", "PROTOCOL", "LANG", "APP_SID")}
    query.update(DOMAIN=installed["portal"].domain, PROTOCOL="0")
    body.update(member_id=installed["portal"].member_id, AUTH_ID="forged-" + "y" * 30)
    return "/install", body, query


def _uninstall(installed):
    body = fixture("onappuninstall_event.json")
    body["auth"].update(member_id=installed["portal"].member_id, application_token="0" * 32)
    return "/events", body, None


SURFACES = {"event": _event, "robot": _robot, "placement": _placement, "install_event": _install_event,
            "install_frame": _install_frame, "uninstall_forged": _uninstall}


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_fuzzed_callbacks_never_500_and_refusals_change_nothing(installed, client, db, redis_conn, surface):
    path, base, query = SURFACES[surface](installed)
    rng = random.Random(f"hub24-{surface}")
    always_refused = surface in ("install_event", "install_frame", "uninstall_forged")
    for i in range(ROUNDS):
        kind, payload = mutate(base, rng)
        before = snapshot(db, redis_conn)
        resp = send(client, path, payload, query)
        assert resp.status_code < 500, (surface, i, kind, resp.get_data(as_text=True)[:300])
        if always_refused or resp.status_code >= 400:
            assert 400 <= resp.status_code < 500, (surface, i, kind, resp.status_code)
            assert snapshot(db, redis_conn) == before, (surface, i, kind)
            body = resp.get_data(as_text=True)
            assert body and "Traceback" not in body
        # a mutation that kept the callback valid may be accepted: drain what it queued for the next round
        for q in ("events", "integrations", "maintenance"):
            Queue(q, connection=redis_conn).empty()


def test_forged_token_is_refused_whatever_else_is_wrong(installed, client, db, redis_conn):
    path, base, _ = _event(installed)
    base["auth"]["application_token"] = "1" * 32
    rng = random.Random("forged")
    for _ in range(ROUNDS):
        kind, payload = mutate(base, rng)
        before = snapshot(db, redis_conn)
        resp = send(client, path, payload)
        assert 400 <= resp.status_code < 500, (kind, resp.status_code)
        assert snapshot(db, redis_conn) == before
