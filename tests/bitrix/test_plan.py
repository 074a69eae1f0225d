"""Request-rate plans: learnt from app.info, set by an administrator, and `unlimited` for on-premise portals."""
from __future__ import annotations

import pytest

from app.bitrix.client import client_for
from app.bitrix.ratelimit import Limits, RateLimiter, limiter_for
from app.bitrix.reconcile import plan_from_license, reconcile


def test_unlimited_plan_keeps_no_bucket(redis_conn):
    limits = Limits.for_plan("unlimited")
    assert not limits.enabled and limits.burst is None
    assert Limits.for_plan("standard").burst == 42 and Limits.for_plan("enterprise").burst == 210
    lim = RateLimiter(redis_conn, "m-unlimited", limits, sleep=pytest.fail)
    assert [lim.acquire(max_wait=0) for _ in range(500)] == [0.0] * 500  # never waits, never refuses
    lim.fill()
    assert lim.try_acquire(max_wait=0) == (True, 0.0)
    assert redis_conn.exists(lim.key) == 0  # nothing was written for it


@pytest.mark.parametrize("info, current, expected", [
    ({"LICENSE_FAMILY": "ent"}, "standard", "enterprise"),
    ({"LICENSE": "de_ent10000", "LICENSE_FAMILY": "ENT"}, None, "enterprise"),
    ({"LICENSE_FAMILY": "project"}, "enterprise", "standard"),  # the portal moved down a plan
    ({"LICENSE_FAMILY": "basic"}, "standard", "standard"),
    ({}, "enterprise", "enterprise"),  # app.info said nothing: keep what we had
    ({"LICENSE_FAMILY": "ent"}, "unlimited", "unlimited"),  # an administrator's on-premise setting stays
])
def test_plan_from_license(info, current, expected):
    assert plan_from_license(info, current) == expected


def test_reconcile_learns_the_plan_from_app_info(b24_app, installed_portal):
    ent = installed_portal(plan="enterprise")  # the sandbox portal's app.info says LICENSE_FAMILY "ent"
    std = installed_portal(plan="standard")
    session = b24_app.extensions["db.session"]()
    ent.plan, std.plan = "standard", "enterprise"  # what Hub24 believed before asking
    session.commit()
    reconcile(ent.id)
    reconcile(std.id)
    session.expire_all()
    assert (ent.plan, std.plan) == ("enterprise", "standard")
    assert client_for(ent.id).limiter.limits == Limits.for_plan("enterprise")


def test_portal_plan_command(b24_app, installed_portal):
    portal = installed_portal()
    runner = b24_app.test_cli_runner()
    out = runner.invoke(args=["portal", "plan", str(portal.id), "unlimited"])
    assert out.exit_code == 0, out.output
    assert "no request limit" in out.output
    session = b24_app.extensions["db.session"]()
    session.expire_all()
    assert portal.plan == "unlimited" and not client_for(portal.id).limiter.limits.enabled
    bad = runner.invoke(args=["portal", "plan", str(portal.id), "platinum"])
    assert bad.exit_code != 0 and "platinum" in bad.output
    session.expire_all()
    assert portal.plan == "unlimited"  # a refused value changes nothing
    assert runner.invoke(args=["portal", "plan", "no-such-portal", "standard"]).exit_code != 0


def test_an_unlimited_portal_that_answers_503_is_paced_like_a_standard_one(b24_app, make_b24_sandbox,
                                                                          installed_portal):
    handle = make_b24_sandbox(limits="standard")
    portal = installed_portal(handle=handle, plan="unlimited")  # wrongly recorded as on-premise without limits
    while portal.state.limiter.admit():  # the portal's bucket is full
        pass
    c = client_for(portal.id, interactive=False)
    assert not c.limiter.limits.enabled
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        portal.state.limiter.reset()  # time passes: the portal's bucket drains

    c._sleep = sleep
    assert c.call("profile")["ID"] == "1"
    assert [e["status"] for e in handle.log.select("rest", host=portal.domain)] == [503, 200]
    assert c.limiter.limits == Limits.for_plan("standard")
    assert limiter_for(b24_app.extensions["redis"], portal.member_id, "standard").level() > 0  # marked full


def test_periodic_plan_refresh_follows_the_portals_license(b24_app, installed_portal):
    from app.bitrix.reconcile import refresh_plans
    from app.jobs import periodic_jobs

    assert [p.name for p in periodic_jobs() if p.func is refresh_plans] == ["portal-plans"]
    ent = installed_portal(plan="enterprise")
    hook = installed_portal(plan="enterprise", webhook=True)  # app.info needs an app: left as set
    session = b24_app.extensions["db.session"]()
    ent.plan, hook.plan = "standard", "unlimited"
    session.commit()
    out = refresh_plans()
    session.expire_all()
    assert ent.plan == "enterprise" and out["changed"].get(ent.id) == "enterprise"
    assert hook.plan == "unlimited" and hook.id not in out["changed"] and not out["failed"]
