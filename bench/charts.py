"""Benchmark 4 — charts: question -> chart options and dashboard server time on N mirrored deals.

LLM time is excluded: the sandbox's scripted LLM answers, and the time spent waiting for it is
subtracted. Each timing is printed against the bare SQL (the same query run directly, as the app's
own user, without guard, role, transaction settings or rendering): the ratio is Hub24's overhead.
"""
from __future__ import annotations

import statistics
import time

import requests

from .common import line, make_app, migrate, sandbox_process, services, webhook_portal

QUESTIONS = [
    ("Deals by stage", "SELECT stage_id_label AS stage, count(*) AS deals FROM deals GROUP BY 1 ORDER BY 2 DESC", "bar"),
    ("Revenue by month", "SELECT date_trunc('month', created_time)::date AS month, sum(opportunity) AS revenue "
                         "FROM deals GROUP BY 1 ORDER BY 1", "line"),
    ("Won deals per manager", "SELECT u.full_name AS manager, count(*) AS won FROM deals d JOIN users u ON u.id = d.assigned_by_id "
                              "WHERE d.stage_semantic_id = 'S' GROUP BY 1 ORDER BY 2 DESC", "bar_horizontal"),
    ("Average deal by pipeline", "SELECT category_id_label AS pipeline, avg(opportunity) AS average FROM deals GROUP BY 1", "pie"),
    ("Open deals", "SELECT count(*) FILTER (WHERE NOT closed) AS open, count(*) AS total FROM deals", "kpi"),
]


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[18] if len(xs) >= 20 else max(xs)


def run(deals: int = 100_000, rounds: int = 20) -> list[str]:
    lines: list[str] = []
    with services() as svc, sandbox_process(deals, "off") as (base, _):
        app = make_app(svc, base)
        app.config.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=base + "/v1")
        migrate(app)
        pid, _sb, _hook = webhook_portal(app, base, plan="unlimited")
        from sqlalchemy import text

        from app.charts import ai
        from app.db import db_session
        from app.sync import service

        with app.app_context():
            run_ = service.run_sync(pid, "deal", "full")
            service.run_sync(pid, "contact", "full")
            n = db_session().execute(text(f"SELECT count(*) FROM portal_{pid}.deals")).scalar()
            db_session().commit()
        print(f"charts: {n} deals mirrored ({run_.status.value})", flush=True)
        llm_s = [0.0]
        real_complete = ai._complete

        def timed_complete(model, messages):
            t0 = time.perf_counter()
            try:
                return real_complete(model, messages)
            finally:
                llm_s[0] += time.perf_counter() - t0

        ai._complete = timed_complete
        ask_ms: list[float] = []
        bare_ms: list[float] = []
        redis = app.extensions["redis"]
        with app.app_context():
            for _ in range(rounds):
                for question, sql, chart in QUESTIONS:
                    answer = {"sql": sql, "chart_type": chart, "x": None, "y": [], "series": None, "title": question,
                              "explanation": question}
                    requests.post(base + "/sandbox/llm_script", json={"responses": [{"answer": answer}]}, timeout=10)
                    for key in redis.scan_iter(f"hub24:charts:answer:{pid}:*"):
                        redis.delete(key)  # every round asks the LLM: no answer cache
                    llm_s[0] = 0.0
                    t0 = time.perf_counter()
                    out = ai.ask(pid, question, model="gpt-4o-mini")
                    ask_ms.append((time.perf_counter() - t0 - llm_s[0]) * 1000)
                    assert not out.get("error"), out
                    db_session().rollback()
                    conn = db_session().connection()
                    conn.exec_driver_sql(f"SET search_path = portal_{pid}")
                    t0 = time.perf_counter()
                    conn.exec_driver_sql(sql).fetchall()
                    bare_ms.append((time.perf_counter() - t0) * 1000)
                    conn.exec_driver_sql("SET search_path = public")
                    db_session().rollback()
        ai._complete = real_complete
        lines.append(line("charts.ask", deals=n, samples=len(ask_ms), p95_ms=p95(ask_ms), median_ms=statistics.median(ask_ms)))
        lines.append(line("charts.bare_sql", samples=len(bare_ms), p95_ms=p95(bare_ms), median_ms=statistics.median(bare_ms)))
        lines.append(line("charts.ratio", ask_vs_bare_p95=p95(ask_ms) / p95(bare_ms)))
        lines += _dashboard(app, pid, rounds, p95(bare_ms) * len(QUESTIONS), sum(bare_ms) / len(bare_ms) * len(QUESTIONS))
    return lines


def _dashboard(app, pid: int, rounds: int, bare_p95_total: float, bare_mean_total: float) -> list[str]:
    """Server time of a dashboard with one widget per question: its list plus each widget's refresh."""
    if not any(r.rule == "/api/v1/dashboards" for r in app.url_map.iter_rules()):
        print("charts: dashboard page timing skipped: /api/v1/dashboards is not there yet", flush=True)
        return []
    from app.api.auth import create_api_key
    from app.db import db_session
    from app.models import Portal

    with app.app_context():
        key = create_api_key(db_session().get(Portal, pid), "bench")
        db_session().commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    created = client.post("/api/v1/dashboards", json={"title": "Bench"}, headers=headers)
    if created.status_code >= 300:
        print(f"charts: dashboard page timing skipped: creating a dashboard answered {created.status_code}", flush=True)
        return []
    page_ms: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        assert client.get("/api/v1/dashboards", headers=headers).status_code == 200
        for question, sql, chart in QUESTIONS:
            r = client.post("/api/v1/charts/run", json={"sql": sql, "chart": {"chart_type": chart, "title": question}},
                            headers=headers)
            assert r.status_code == 200, r.get_json()
        page_ms.append((time.perf_counter() - t0) * 1000)
    return [line("charts.dashboard", widgets=len(QUESTIONS), p95_ms=p95(page_ms), median_ms=statistics.median(page_ms)),
            line("charts.dashboard_ratio", dashboard_vs_bare_sql_p95=p95(page_ms) / bare_p95_total,
                 dashboard_vs_bare_sql_mean=statistics.mean(page_ms) / bare_mean_total)]
