"""Hub24's pages in a real browser, inside the sandbox's portal page (see conftest.py).

They assert what a user sees in the iframe, what the portal page received over the Bitrix24 JS SDK's
frame protocol, and what landed in the database — never timings.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser
NON_ADMIN = 3  # sandbox users 1 and 2 are administrators


def app_frame(page, live):
    """The Hub24 iframe's Frame, once Hub24 has answered the frame POST."""
    page.wait_for_function("document.getElementById('app-frame').contentWindow.location !== null")
    for _ in range(100):
        for f in page.frames:
            if f.url.startswith(live["base"]):
                f.wait_for_load_state()
                return f
        page.wait_for_timeout(100)
    raise AssertionError("the Hub24 frame never loaded: " + ", ".join(f.url for f in page.frames))


def mirror(live, sql: str, **params):
    from app.sync.schema import schema_name

    with live["app"].app_context():
        from app.db import db_session

        rows = db_session().execute(text(sql.replace("{s}", f'"{schema_name(live["row_id"])}"')), params).mappings().all()
        db_session().rollback()
        return rows


def drawn_pixels(frame, selector: str) -> int:
    """Non-transparent pixels on the first canvas under `selector` (ECharts draws on a canvas)."""
    return frame.evaluate("""(sel) => {
        const c = document.querySelector(sel + ' canvas');
        if (!c) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }""", selector)


def test_install_page_finishes_installation_through_the_sdk(live):
    assert "Installation finished" in live["install_frame_text"]
    assert "getInitData" in live["install_messages"] and "setInstallFinish" in live["install_messages"]
    assert live["portal"].installation(live["client_id"])["installed"] is True
    with live["app"].app_context():
        from app.db import db_session
        from app.models import Portal

        assert db_session().get(Portal, live["row_id"]).status.value == "active"


def test_dashboard_opens_with_sync_status_and_fits_the_frame(live, page):
    page.goto(live["url"]("DEFAULT"))
    frame = app_frame(page, live)
    assert frame.locator("h1").first.inner_text() == "Hub24"
    frame.locator("#sync-text", has_text="CRM mirror up to date").wait_for()
    frame.locator(".sync-row[data-entity=deal]", has_text="Deals").wait_for()
    # no OPENAI_API_KEY in this stack: the ask box says so plainly and how to turn AI on
    notice = frame.locator("#ai-off")
    assert "AI answers are off" in notice.inner_text() and "OPENAI_API_KEY" in notice.inner_text()
    assert frame.locator("#ask-input").is_disabled()
    # the builder lists the mirror's fields
    frame.locator("#b-entity option[value=deals]").wait_for(state="attached")
    # the page asked Bitrix24 to fit the frame to its content
    page.wait_for_function("window.sandboxPortal.resized.length > 0")
    commands = page.evaluate("window.sandboxPortal.messages.map(m => m.command)")
    assert "getInitData" in commands and "resizeWindow" in commands
    height = page.evaluate("document.getElementById('app-frame').getBoundingClientRect().height")
    assert height == page.evaluate("window.sandboxPortal.resized.at(-1).height")
    assert not page.js_errors, page.js_errors
    shot(page, "01-dashboard")


def test_left_menu_opens_the_dashboards(live, page):
    page.goto(live["url"]("LEFT_MENU"))
    frame = app_frame(page, live)
    assert frame.locator("h1").first.inner_text() == "Hub24 dashboards"
    frame.locator("#builder-card").wait_for()


def test_saved_dashboard_draws_its_chart(live, page):
    stages = mirror(live, "SELECT coalesce(stage_id_label, stage_id) AS stage, count(*) AS n FROM {s}.deals "
                          "GROUP BY 1 ORDER BY 2 DESC")
    option = {"tooltip": {}, "xAxis": {"type": "category", "data": [r["stage"] for r in stages]},
              "yAxis": {"type": "value"}, "series": [{"type": "bar", "data": [r["n"] for r in stages]}]}
    result = {"title": "Deals by stage", "explanation": "How many deals sit in each stage.", "chart_type": "bar",
              "sql": "SELECT stage_id_label, count(*) FROM deals GROUP BY 1", "option": option,
              "columns": ["stage", "deals"], "rows": [[r["stage"], r["n"]] for r in stages]}
    page.goto(live["url"]("DEFAULT"))
    frame = app_frame(page, live)
    made = frame.evaluate("""async (result) => {
        const post = (url, body) => hub24Fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                    body: JSON.stringify(body)}).then(r => r.json());
        const d = await post('/api/v1/dashboards', {title: 'Pipeline', refresh_s: 300});
        await post(`/api/v1/dashboards/${d.id}/widgets`, {title: result.title, kind: 'build', chart_type: 'bar',
            spec: {entity: 'deals', dimension: 'stage_id_label', aggregation: 'count', chart_type: 'bar'}, result});
        return d;
    }""", result)
    try:
        page.goto(live["url"]("DEFAULT"))
        frame = app_frame(page, live)
        widget = frame.locator(".widget", has_text="Deals by stage")
        widget.locator("canvas").wait_for()
        frame.wait_for_function("() => document.querySelector('.widget canvas') && "
                                "echarts.getInstanceByDom(document.querySelector('.widget .chart')) !== undefined")
        assert drawn_pixels(frame, ".widget .chart") > 500
        assert frame.locator("#dashboard-tabs button.active").inner_text() == "Pipeline"
        assert frame.locator("#refresh-select").input_value() == "300"
        shot(page, "02-dashboard-saved-chart")
    finally:
        frame.evaluate("(id) => hub24Fetch(`/api/v1/dashboards/${id}`, {method: 'DELETE'})", made["id"])


def test_deal_tab_shows_the_right_deal(live, page):
    row = mirror(live, "SELECT id, title, coalesce(stage_id_label, stage_id) AS stage, company_id FROM {s}.deals "
                       "WHERE company_id IS NOT NULL ORDER BY id LIMIT 1")[0]
    tokens = live["portal"].issue_tokens(live["client_id"])
    deal = live["portal"].call("crm.item.get", {"entityTypeId": 2, "id": row["id"]}, auth=tokens["access_token"])
    deal = deal["result"]["item"]
    page.goto(live["url"]("CRM_DEAL_DETAIL_TAB", deal_id=row["id"]))
    frame = app_frame(page, live)
    assert frame.locator("#deal-title").inner_text() == deal["title"]
    assert frame.locator("#deal-stage").inner_text() == row["stage"]
    assert frame.locator("#stage-bar span.current").inner_text() == row["stage"]
    assert f"deal {row['id']}" in frame.locator("h2").first.inner_text()
    assert frame.locator("#deal-company a").is_visible()
    contact_ids = deal.get("contactIds") or []
    assert frame.locator("#deal-contacts li").count() == len(contact_ids) or not contact_ids
    assert frame.locator("#similar").inner_text().startswith("How similar deals went")
    shot(page, "03-deal-tab")
    frame.locator("#deal-title a").click()  # opens the deal slider through the SDK (openPath)
    page.wait_for_function("window.sandboxPortal.opened.length > 0")
    opened = page.evaluate("window.sandboxPortal.opened")
    assert opened[-1].startswith(f"/crm/deal/details/{row['id']}/") and "IFRAME=Y" in opened[-1]
    assert page.locator("#b24-slider").is_visible()


def test_deal_tab_for_a_deal_not_in_the_mirror(live, page):
    page.goto(live["url"]("CRM_DEAL_DETAIL_TAB", deal_id=987654321))
    frame = app_frame(page, live)
    assert "is not in Hub24's copy of the CRM" in frame.locator("body").inner_text()


def test_settings_refuse_a_non_administrator(live, page):
    page.goto(live["url"]("REST_APP_URI", user_id=NON_ADMIN))
    frame = app_frame(page, live)
    assert frame.locator("#refused h1").inner_text() == "Only administrators can open Hub24 settings"
    assert frame.locator("#ai-settings").count() == 0
    status = frame.evaluate("""() => hub24Fetch('/api/v1/settings', {method: 'PUT',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({ai_enabled: false})}).then(r => r.status)""")
    assert status == 403
    shot(page, "04-settings-refused")


def test_settings_for_an_administrator(live, page):
    page.goto(live["url"]("REST_APP_URI", user_id=1))
    frame = app_frame(page, live)
    frame.locator("#sync-rows tr[data-entity=deal]").wait_for()
    frame.locator("#connection-facts", has_text=live["portal"].domain).wait_for()
    assert frame.locator("#ai-key-missing").is_visible()  # no OPENAI_API_KEY in this stack
    frame.locator("#ai-enabled").uncheck()
    frame.locator("#ai-model").fill("gpt-4.1-mini")
    frame.locator("#ai-form button").click()
    frame.locator("#ai-status", has_text="Saved.").wait_for()
    with live["app"].app_context():
        from app.db import db_session
        from app.models.dashboards import PortalSettings

        row = db_session().get(PortalSettings, live["row_id"])
        assert (row.ai_enabled, row.ai_model, row.updated_by) == (False, "gpt-4.1-mini", 1)
        db_session().delete(row)
        db_session().commit()
    shot(page, "05-settings-admin")


def test_dashboard_in_dark_mode(live, page):
    page.emulate_media(color_scheme="dark")
    page.goto(live["url"]("DEFAULT", theme="dark"))
    frame = app_frame(page, live)
    frame.locator("#sync-text", has_text="CRM mirror up to date").wait_for()
    bg = frame.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(27, 30, 34)"
    shot(page, "06-dashboard-dark")


def test_portal_page_refuses_bad_input(live, page):
    resp = page.goto(live["url"]("CRM_DEAL_DETAIL_TAB", options="[1,"))
    assert resp.status == 400 and "options must be a JSON object" in page.inner_text("#error")
    resp = page.goto(live["url"]("DEFAULT", user_id=99999))
    assert resp.status == 400
    resp = page.goto(live["url"]("CRM_LEAD_DETAIL_TAB"))
    assert resp.status == 404 and "bound:" in page.inner_text("#error")


def _has_route(live, rule: str) -> bool:
    return any(r.rule == rule for r in live["app"].url_map.iter_rules())


def test_builder_draws_a_chart_and_exports_it(live, page):
    if not _has_route(live, "/api/v1/charts/build"):
        pytest.skip("POST /api/v1/charts/build (the chart back-end, app/charts) has not landed yet")
    page.goto(live["url"]("DEFAULT"))
    frame = app_frame(page, live)
    frame.locator("#b-entity option[value=deals]").wait_for(state="attached")
    frame.select_option("#b-entity", "deals")
    frame.select_option("#b-dimension", "stage_id_label")
    frame.select_option("#b-chart", "bar")
    frame.locator("#b-build").click()
    frame.locator("#result-card:not(.hidden)").wait_for()
    frame.wait_for_function("() => document.querySelector('#result-chart canvas')")
    assert drawn_pixels(frame, "#result-chart") > 500
    shot(page, "07-builder-chart")
    with page.expect_download() as dl:
        frame.locator("#csv-button").click()
    csv_text = open(dl.value.path(), encoding="utf-8-sig").read()
    assert csv_text.splitlines()[0] and len(csv_text.splitlines()) > 1
    with page.expect_download() as dl:
        frame.locator("#png-button").click()
    assert open(dl.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_scripted_question_draws_a_chart_and_saves_it(live, page):
    import requests

    from tests.browser.conftest import run_jobs

    if not _has_route(live, "/api/v1/charts/ask"):
        pytest.skip("POST /api/v1/charts/ask (the chart back-end, app/charts) has not landed yet")
    sandbox = live["handle"].base_url
    answer = {"sql": "SELECT stage_id_label AS stage, count(*) AS deals FROM deals GROUP BY 1 ORDER BY 2 DESC",
              "chart_type": "bar", "x": "stage", "y": ["deals"], "series": None, "title": "Deals by stage",
              "explanation": "Counts deals in each stage."}
    r = requests.post(sandbox + "/sandbox/llm_script", json={"responses": [{"answer": answer}]}, timeout=10)
    assert r.status_code == 200, r.text
    ai_app = live["make_app"](OPENAI_API_KEY="sk-test-not-a-real-key", OPENAI_BASE_URL=sandbox + "/v1")
    live["dispatch"].target = ai_app
    try:
        page.goto(live["url"]("DEFAULT"))
        frame = app_frame(page, live)
        assert frame.locator("#ai-off").is_hidden()
        frame.locator("#ask-input").fill("How many deals are in each stage?")
        frame.locator("#ask-button").click()
        frame.locator("#ask-status", has_text="Waiting for a worker").wait_for()
        with ai_app.app_context():
            run_jobs(ai_app, "charts")
        frame.locator("#result-card:not(.hidden)").wait_for()
        assert frame.locator("#result-title").inner_text() == "Deals by stage"
        assert frame.locator("#result-explanation").inner_text() == "Counts deals in each stage."
        frame.wait_for_function("() => document.querySelector('#result-chart canvas')")
        assert drawn_pixels(frame, "#result-chart") > 500
        assert frame.locator("#result-sql").is_hidden()
        frame.locator("#sql-toggle").click()
        assert "stage_id_label" in frame.locator("#result-sql").inner_text()
        frame.locator("#recent-list li", has_text="How many deals are in each stage?").wait_for()
        shot(page, "08-ai-chart")
        frame.locator("#save-button").click()
        frame.select_option("#save-target", "new")
        frame.locator("#save-new-title").fill("AI answers")
        frame.locator("#save-form button[type=submit]").click()
        frame.locator("#save-status", has_text="Saved.").wait_for()
        widget = frame.locator(".widget", has_text="Deals by stage")
        widget.locator("canvas").wait_for()
        assert frame.locator("#dashboard-tabs button.active").inner_text() == "AI answers"
        shot(page, "09-ai-chart-saved")
        # refreshing the saved answer re-runs its checked SQL; the LLM is not asked again
        asked = len(requests.post(sandbox + "/sandbox/llm_requests", json={}, timeout=10).json())
        with page.expect_response(lambda r: "/widgets/" in r.url and r.request.method == "PUT") as stored:
            with page.expect_response(lambda r: r.url.endswith("/api/v1/charts/run")) as run:
                widget.locator("button[title='Refresh this chart']").click()
        assert run.value.status == 200 and stored.value.status == 200
        assert stored.value.json()["result"]["rows"] == run.value.json()["result"]["rows"]
        frame.locator(".widget canvas").wait_for()
        assert len(requests.post(sandbox + "/sandbox/llm_requests", json={}, timeout=10).json()) == asked
    finally:
        live["dispatch"].target = live["app"]
        with live["app"].app_context():
            from app.db import db_session
            from app.models.dashboards import Dashboard, RecentQuestion

            db_session().query(Dashboard).filter_by(portal_id=live["row_id"]).delete()
            db_session().query(RecentQuestion).filter_by(portal_id=live["row_id"]).delete()
            db_session().commit()
