"""Tokens: refresh on expired_token and ahead of expiry, adoption, needs_reinstall, domain change, upkeep."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests

from app.bitrix import tokens
from app.bitrix.client import client_for
from app.bitrix.errors import AuthLost, TransportError
from app.jobs import periodic_jobs
from app.models.portal import Portal, PortalStatus, PortalToken
from sandbox import oauth as sandbox_oauth


def _token(db, portal_id) -> PortalToken:
    db.expire_all()
    return db.query(PortalToken).filter_by(portal_id=portal_id).one()


def _portal(db, portal_id) -> Portal:
    db.expire_all()
    return db.get(Portal, portal_id)


def test_expired_token_is_refreshed_once_and_stored(b24_app, b24_db, b24_sandbox, installed_portal, caplog):
    portal = installed_portal(data_size=5)
    old = _token(b24_db, portal.id)
    old_access, old_refresh = old.access_token, old.refresh_token
    c = client_for(portal.id)
    portal.sandbox.expire_tokens()
    grants = len(b24_sandbox.log.refresh_grants())
    with caplog.at_level(logging.INFO):
        assert c.call("profile")["ID"] == "1"
        assert c.call("profile")["ID"] == "1"
    assert len(b24_sandbox.log.refresh_grants()) == grants + 1
    new = _token(b24_db, portal.id)
    assert new.access_token != old_access and new.refresh_token != old_refresh and new.refreshed_at is not None
    text = caplog.text
    assert "refreshed" in text and old_access not in text and new.access_token not in text
    assert new.refresh_token not in text and old_refresh not in text
    # stored encrypted: the raw column holds no token
    raw = b24_db.execute(__import__("sqlalchemy").text(
        "select access_token, refresh_token from portal_tokens where portal_id = :p"), {"p": portal.id}).one()
    assert new.access_token not in raw[0] and new.refresh_token not in raw[1]


def test_waiting_refresher_adopts_instead_of_spending_again(b24_app, b24_db, b24_sandbox, installed_portal):
    portal = installed_portal()
    stale = _token(b24_db, portal.id).access_token
    grants = len(b24_sandbox.log.refresh_grants())
    first = tokens.refresh(portal.id, stale_access_token=stale)
    second = tokens.refresh(portal.id, stale_access_token=stale)  # what a process that waited on the lock does
    assert second.access_token == first.access_token != stale
    assert len(b24_sandbox.log.refresh_grants()) == grants + 1


def test_refresh_ahead_of_known_expiry(b24_app, b24_db, b24_sandbox, installed_portal):
    portal = installed_portal()
    tok = _token(b24_db, portal.id)
    tok.expires_at = tokens.utcnow() + timedelta(seconds=20)
    b24_db.commit()
    grants = len(b24_sandbox.log.refresh_grants())
    assert client_for(portal.id).call("profile")["ID"] == "1"
    assert len(b24_sandbox.log.refresh_grants()) == grants + 1
    rest = b24_sandbox.log.select("rest", host=portal.domain)
    assert not any(e["error"] == "expired_token" for e in rest)  # refreshed before, not after, a failure
    assert _token(b24_db, portal.id).expires_at > tokens.utcnow() + timedelta(minutes=30)


def _spend_refresh_token_elsewhere(b24_sandbox, b24_registration, refresh_token):
    r = requests.get(sandbox_oauth.oauth_base_url(b24_sandbox.sandbox) + "/oauth/token/", timeout=10, params={
        "grant_type": "refresh_token", "client_id": b24_registration["client_id"],
        "client_secret": b24_registration["client_secret"], "refresh_token": refresh_token})
    assert r.status_code == 200


def _assert_needs_reinstall(db, portal_id, reason_part):
    p = _portal(db, portal_id)
    assert p.status == PortalStatus.needs_reinstall and p.needs_reinstall
    assert reason_part in p.needs_reinstall_reason


def test_invalid_grant_marks_needs_reinstall(b24_app, b24_db, b24_sandbox, b24_registration, installed_portal,
                                             caplog):
    portal = installed_portal()
    stored = _token(b24_db, portal.id)
    _spend_refresh_token_elsewhere(b24_sandbox, b24_registration, stored.refresh_token)
    portal.sandbox.expire_tokens()
    c = client_for(portal.id)
    with caplog.at_level(logging.WARNING), pytest.raises(AuthLost) as exc:
        c.call("profile")
    assert exc.value.code == "invalid_grant"
    _assert_needs_reinstall(b24_db, portal.id, "invalid_grant")
    assert "needs reinstall" in caplog.text and stored.refresh_token not in caplog.text
    # its jobs stop without hammering the portal: no request at all
    seen = len(b24_sandbox.log.entries)
    with pytest.raises(AuthLost):
        client_for(portal.id).call("profile")
    assert len(b24_sandbox.log.entries) == seen


@pytest.mark.parametrize("state, code", [({"deleted": True}, "PORTAL_DELETED"),
                                         ({"payment_required": True}, "PAYMENT_REQUIRED")])
def test_portal_deleted_or_unpaid_marks_needs_reinstall(b24_app, b24_db, installed_portal, state, code):
    portal = installed_portal()
    c = client_for(portal.id)
    portal.sandbox.set_state(**state)
    with pytest.raises(AuthLost) as exc:
        c.call("profile")
    assert exc.value.code == code
    _assert_needs_reinstall(b24_db, portal.id, code)


def test_payment_required_at_refresh_marks_needs_reinstall(b24_app, b24_db, installed_portal):
    portal = installed_portal()
    c = client_for(portal.id)
    portal.sandbox.expire_tokens()
    portal.state.payment_required = True
    with pytest.raises(AuthLost):
        c.call("profile")
    _assert_needs_reinstall(b24_db, portal.id, "PAYMENT_REQUIRED")


def test_auth_still_failing_after_refresh_marks_needs_reinstall(b24_app, b24_db, b24_registration,
                                                                installed_portal):
    portal = installed_portal()
    c = client_for(portal.id)
    portal.sandbox.uninstall(b24_registration["client_id"])  # every token of the app dies
    with pytest.raises(AuthLost):
        c.call("profile")
    _assert_needs_reinstall(b24_db, portal.id, "invalid_grant")


def test_domain_change_by_302_updates_the_stored_domain(b24_app, b24_db, installed_portal):
    portal = installed_portal(data_size=3)
    old = portal.domain
    moved = portal.sandbox.change_domain()
    c = client_for(portal.id)
    assert c.call("crm.deal.get", {"id": 1})["ID"] == "1"
    p = _portal(b24_db, portal.id)
    assert p.domain == moved["domain"] != old
    assert p.client_endpoint == f"http://{moved['domain']}/rest/"
    assert client_for(portal.id).domain == moved["domain"]


def test_webhook_domain_change(b24_app, b24_db, installed_portal):
    portal = installed_portal(webhook=True)
    moved = portal.sandbox.change_domain()
    assert client_for(portal.id).call("profile")["ID"] == "1"
    p = _portal(b24_db, portal.id)
    assert p.domain == moved["domain"] and p.webhook_url.startswith(f"http://{moved['domain']}/rest/1/")


def test_token_upkeep_refreshes_only_idle_portals(b24_app, b24_db, b24_sandbox, installed_portal):
    assert "token-upkeep" in [p.name for p in periodic_jobs()]
    idle, active = installed_portal(), installed_portal()
    now = tokens.utcnow()
    t_idle, t_active = _token(b24_db, idle.id), _token(b24_db, active.id)
    t_idle.refreshed_at = now - timedelta(days=160)
    t_active.refreshed_at = now - timedelta(hours=2)
    b24_db.commit()
    idle_refresh = t_idle.refresh_token
    active_pair = (t_active.access_token, t_active.refresh_token)
    grants = len(b24_sandbox.log.refresh_grants())

    try:
        tokens.upkeep_idle_tokens()
    except TransportError:
        pass  # idle portals left in the shared test database by other sessions may be unreachable

    hosts = [g["host"] for g in b24_sandbox.log.refresh_grants()[grants:]]
    assert len(hosts) == 1  # the idle portal only, once
    t_idle, t_active = _token(b24_db, idle.id), _token(b24_db, active.id)
    assert t_idle.refresh_token != idle_refresh and now - t_idle.refreshed_at < timedelta(minutes=1)
    assert (t_active.access_token, t_active.refresh_token) == active_pair
    assert client_for(idle.id).call("profile")["ID"] == "1"  # the renewed grant works
    assert idle.id not in tokens.idle_portals() and active.id not in tokens.idle_portals()
