"""The manual builder (its results agree with SQL run directly), the charts API's bad input, AI switched off."""
import pytest
from sqlalchemy import text

from app.api.auth import create_api_key


@pytest.fixture()
def headers(db, mirrored):
    key = create_api_key(mirrored, "builder-test")
    db.commit()
    return {"Authorization": f"Bearer {key}"}


def build(client, headers, **spec):
    r = client.post("/api/v1/charts/build", json=spec, headers=headers)
    return r.status_code, r.get_json()


def test_count_by_stage_agrees_with_direct_sql(app, db, client, headers, mirrored):
    status, body = build(client, headers, entity="deals", dimension="stage_id_label", aggregation="count", chart_type="bar")
    assert status == 200, body
    res = body["result"]
    direct = db.execute(text(f"SELECT stage_id_label, count(*) FROM portal_{mirrored.id}.deals GROUP BY 1 ORDER BY 1")).all()
    assert [tuple(r) for r in res["rows"]] == [tuple(r) for r in direct]
    assert res["columns"] == ["Deal Stage (label)", "Count"] and res["option"]["series"][0]["type"] == "bar"
    assert res["title"] == "Deals: Count by Deal Stage (label)"


def test_sum_by_month_with_filters_agrees_with_direct_sql(app, db, client, headers, mirrored):
    status, body = build(client, headers, entity="deals", dimension="created_time", bucket="quarter", measure="opportunity",
                         aggregation="sum", chart_type="line",
                         filters=[{"column": "category_id", "op": "=", "value": "0"},
                                  {"column": "title", "op": "contains", "value": "сделка"},
                                  {"column": "opportunity", "op": ">=", "value": "1000"}])
    assert status == 200, body
    direct = db.execute(text(
        f"SELECT date_trunc('quarter', created_time)::date, sum(opportunity) FROM portal_{mirrored.id}.deals "
        "WHERE category_id = 0 AND title ILIKE '%сделка%' AND opportunity >= 1000 GROUP BY 1 ORDER BY 1")).all()
    assert len(direct) > 1
    assert [(r[0], float(r[1])) for r in body["result"]["rows"]] == [(d.isoformat(), float(s)) for d, s in direct]
    assert "%(p1)s" in body["result"]["sql"] and body["result"]["params"]["p1"] == "%сделка%"  # values are parameters


def test_series_kpi_and_list_columns(app, db, client, headers, mirrored):
    status, body = build(client, headers, entity="deals", dimension="created_time", bucket="year", series="category_id_label",
                         chart_type="bar_stacked")
    assert status == 200 and {s.get("stack") for s in body["result"]["option"]["series"]} == {"total"}
    status, body = build(client, headers, entity="deals", measure="opportunity", aggregation="avg", chart_type="kpi")
    direct = db.execute(text(f"SELECT avg(opportunity) FROM portal_{mirrored.id}.deals")).scalar()
    assert status == 200 and body["result"]["rows"][0][0] == pytest.approx(float(direct))
    status, body = build(client, headers, entity="deals", dimension="stage_id_label",
                         filters=[{"column": "contact_ids", "op": "=", "value": "26"}, {"column": "closed", "op": "=", "value": "no"}])
    direct = db.execute(text(f"SELECT count(*) FROM portal_{mirrored.id}.deals WHERE 26 = ANY(contact_ids) AND NOT closed")).scalar()
    assert status == 200 and sum(r[1] for r in body["result"]["rows"]) == direct


@pytest.mark.parametrize("spec, words", [
    ({"entity": "invoices"}, "Unknown entity"),
    ({"entity": "deals", "dimension": "stage_id; DROP TABLE deals"}, "has no column"),
    ({"entity": "deals", "dimension": "raw"}, "has no column"),
    ({"entity": "deals", "measure": "title", "aggregation": "sum"}, "needs a numeric column"),
    ({"entity": "deals", "aggregation": "median"}, "Unknown aggregation"),
    ({"entity": "deals", "aggregation": "sum"}, "needs a measure"),
    ({"entity": "deals", "dimension": "created_time", "bucket": "fortnight"}, "Unknown bucket"),
    ({"entity": "deals", "dimension": "title", "bucket": "month"}, "date columns only"),
    ({"entity": "deals", "filters": [{"column": "opportunity", "op": ">", "value": "lots"}]}, "not a valid numeric"),
    ({"entity": "deals", "filters": [{"column": "created_time", "op": ">", "value": "yesterday"}]}, "not a valid"),
    ({"entity": "deals", "filters": [{"column": "title", "op": "~", "value": "x"}]}, "unknown condition"),
    ({"entity": "deals", "filters": [{"column": "title", "op": ">", "value": "x"}]}, "needs a number or date"),
    ({"entity": "deals", "filters": "title = 1"}, "filters must be a list"),
    ({"entity": "deals", "filters": [{"column": "opportunity", "op": "="}]}, "a value is required"),
    ({"entity": "deals", "chart_type": "hologram"}, "Unknown chart type"),
    ({"entity": "deals", "limit": "many"}, "limit must be a number"),
])
def test_builder_bad_input_is_400_with_a_reason(app, client, headers, spec, words):
    status, body = build(client, headers, **spec)
    assert status == 400 and words in body["message"], body


def test_run_render_and_export(app, db, client, headers, mirrored):
    r = client.post("/api/v1/charts/run", json={"sql": "SELECT source_id_label AS source, count(*) AS n FROM deals GROUP BY 1",
                                                "chart": {"chart_type": "pie", "x": "source", "y": ["n"]}}, headers=headers)
    assert r.status_code == 200 and r.get_json()["result"]["option"]["series"][0]["type"] == "pie"
    r = client.post("/api/v1/charts/run", json={"sql": "DELETE FROM deals"}, headers=headers)
    assert r.status_code == 400 and r.get_json()["error"] == "sql_refused"
    r = client.post("/api/v1/charts/run", json={"sql": "SELECT nope FROM deals"}, headers=headers)
    assert r.status_code == 400 and r.get_json()["error"] == "sql_error" and "nope" in r.get_json()["message"]
    r = client.post("/api/v1/charts/render", json={"columns": ["a", "b"], "rows": [["x", 1], ["y", 2]],
                                                   "chart": {"chart_type": "funnel"}}, headers=headers)
    assert r.status_code == 200 and r.get_json()["option"]["series"][0]["type"] == "funnel"
    assert client.post("/api/v1/charts/render", json={"columns": ["a"], "rows": [[1, 2]]}, headers=headers).status_code == 400
    r = client.post("/api/v1/charts/export.csv", json={"build": {"entity": "deals", "dimension": "stage_id_label"}}, headers=headers)
    assert r.status_code == 200 and r.get_data(as_text=True).lstrip("\ufeff").startswith("Deal Stage (label),Count")
    r = client.post("/api/v1/charts/export.csv", json={"sql": "SELECT pg_sleep(1)"}, headers=headers)
    assert r.status_code == 400
    fields = client.get("/api/v1/charts/fields", headers=headers).get_json()
    deals = next(e for e in fields["entities"] if e["table"] == "deals")
    assert any(c["name"] == "uf_crm_1721244206" and c["values"] for c in deals["columns"])


def test_every_route_wants_a_token_and_json(app, client, headers):
    for method, path in (("post", "/api/v1/charts/ask"), ("get", "/api/v1/charts/jobs/x"), ("post", "/api/v1/charts/build"),
                         ("post", "/api/v1/charts/run"), ("post", "/api/v1/charts/render"), ("post", "/api/v1/charts/export.csv"),
                         ("get", "/api/v1/charts/fields"), ("get", "/api/v1/charts/status"), ("get", "/api/v1/schema.md")):
        assert getattr(client, method)(path).status_code == 401
    for path in ("/api/v1/charts/build", "/api/v1/charts/run", "/api/v1/charts/render", "/api/v1/charts/export.csv"):
        for data in ("not json", "[1, 2]", '"text"'):
            r = client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 400 and r.get_json()["message"], (path, data)


def test_ai_off_says_how_to_turn_it_on(app, db, client, headers):
    r = client.post("/api/v1/charts/ask", json={"question": "deals by stage"}, headers=headers)
    body = r.get_json()
    assert r.status_code == 409 and body["error"] == "ai_disabled"
    assert "OPENAI_API_KEY" in body["message"] and "OPENAI_BASE_URL" in body["message"] and "builder" in body["message"]
    status = client.get("/api/v1/charts/status", headers=headers).get_json()
    assert status["ai"]["enabled"] is False and "OPENAI_API_KEY" in status["ai"]["message"]
    # the manual builder still works
    assert build(client, headers, entity="deals", dimension="stage_id_label")[0] == 200
