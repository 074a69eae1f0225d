"""Fixtures of the gateway tests: sandbox methods that misbehave on purpose (registered for one test)."""
from __future__ import annotations

import pytest

from sandbox import registry
from sandbox.errors import RestError


@pytest.fixture()
def sandbox_method():
    """Register a sandbox REST method for one test: ``sandbox_method(name, fn, scope="crm")``."""
    added: list[str] = []

    def register(name: str, fn, scope: str | None = "crm"):
        registry.method(name, scope)(fn)
        added.append(name.lower())

    yield register
    for name in added:
        registry.METHODS.pop(name, None)


@pytest.fixture()
def flaky_deal_list(sandbox_method):
    """``hub24test.deal.list``: `crm.deal.list`, except that a page starting after id `fail_after` fails,
    or (mode "shuffle") comes back with ids out of order."""
    state = {"fail_after": None, "mode": "error", "calls": 0}

    def flaky(call):
        state["calls"] += 1
        flt = call.param("filter") or {}
        after = int(flt.get(">ID") or 0) if str(flt.get(">ID") or "0").isdigit() else 0
        page = registry.lookup("crm.deal.list").fn(call)
        if state["fail_after"] is not None and after >= state["fail_after"]:
            if state["mode"] == "error":
                raise RestError(500, "INTERNAL_SERVER_ERROR", "Internal server error")
            page.items = list(reversed(page.items))
        return page

    sandbox_method("hub24test.deal.list", flaky)
    return state
