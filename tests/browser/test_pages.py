"""Hub24's pages in a real browser, inside the sandbox's portal page (see conftest.py)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def test_install_page_finishes_installation_through_the_sdk(live):
    assert "Installation finished" in live["install_frame_text"]
    assert "getInitData" in live["install_messages"] and "setInstallFinish" in live["install_messages"]
    assert live["portal"].installation(live["client_id"])["installed"] is True


def test_dashboard_opens(live, page):
    page.goto(live["url"]("DEFAULT"))
    app = page.frame_locator("#app-frame")
    app.locator("h1").first.wait_for()
    shot(page, "01-dashboard")
