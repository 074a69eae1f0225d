"""Benchmark 3 — events: N deal updates made in the sandbox in one burst, on `--limits standard`.

The whole of Hub24 runs as processes (devtools.stack: gunicorn receiving the sandbox's event deliveries,
RQ workers, dedicated embedded PostgreSQL/Redis under var/bench-events), installed into a sandbox portal
(own process, N deals, standard limits, `--cost-sleep 1` so calls take their modelled server time).
After the install's full sync, the sandbox changes every deal's title in one mass update (`bulk_update`:
one ONCRMDEALUPDATE per deal, delivered to /events one by one, as a portal does). Measured: seconds
until every new title is in PostgreSQL, REST calls Hub24 made meanwhile (the sandbox's request counters)
as a share of the events, and the theoretical minimum: the batch reads needed (2,500 records each) times
the modelled time of one, under the portal's limits. The sandbox's own delivery time (it posts events
one after another and never faster than Hub24 answers) is printed beside it.
"""
from __future__ import annotations

import math
import time

from .common import line

READ_PER_CALL = 2500  # one batch call: 50 crm.item.list pages of 50 records


def theoretical(params: dict, events: int, table_rows: int) -> dict:
    """The fewest calls that can re-read `events` changed records, and the least time they take."""
    from sandbox.limits import list_cost

    calls = math.ceil(events / READ_PER_CALL)
    page = list_cost(table_rows, counted=False, keyset=True, scanned=0)
    call_time = 50 * page * (params["cost_sleep"] or 1.0) + params["latency_ms"] / 1000
    t_rate = max(0, calls - params["threshold"]) / params["drain_per_second"] if params["drain_per_second"] else 0.0
    return {"calls": calls, "call_time_s": call_time, "t_min_s": calls * call_time + t_rate}


def _mirror_titles(st, schema: str, prefix: str) -> int:
    from sqlalchemy import text

    with st.app_context() as s:
        return s.execute(text(f'SELECT count(*) FROM "{schema}".deals WHERE title = :p || id::text'),
                         {"p": prefix}).scalar() or 0


def _initial_sync_done(st) -> bool:
    from sqlalchemy import select

    from app.models.sync import RunStatus, SyncMode, SyncRun

    with st.app_context() as s:
        runs = s.scalars(select(SyncRun).where(SyncRun.portal_id == st.portal_id, SyncRun.mode == SyncMode.full)).all()
    return any(r.entity == "deal" and r.status == RunStatus.succeeded for r in runs) and \
        not any(r.status == RunStatus.running for r in runs)


def run(n: int = 10_000) -> list[str]:
    from devtools.stack import Stack, wait_until

    lines: list[str] = []
    st = Stack(name="bench-events", data_size=n, limits="standard", cost_sleep=1.0, workers=3, seed=9)
    with st:
        wait_until(lambda: _initial_sync_done(st), 900, interval=1, what="the install's full sync")
        from app.sync.schema import schema_name

        schema = schema_name(st.portal_id)
        info = st.sandbox.limits()
        params, table = info["params"], info["tables"]["2"]
        theory = theoretical(params, n, table)
        lines.append(line("events.theory", events=n, calls_needed=theory["calls"], call_time_s=theory["call_time_s"],
                          t_min_s=theory["t_min_s"], drain=params["drain_per_second"], burst=params["threshold"]))
        time.sleep(2)  # let the install's trailing jobs (reference refresh, reconcile of handlers) settle
        st.sandbox.limits(reset=True)
        before = len(st.sandbox.deliveries(kind="event"))

        prefix = "Event bench "
        started = time.perf_counter()
        st.sandbox.bulk_update(2, list(range(1, n + 1)), {"title": prefix + "{id}"})
        changed_s = time.perf_counter() - started
        wait_until(lambda: st.sandbox.flush(timeout=60), 3600, interval=0, what="the sandbox's deliveries")
        delivered_s = time.perf_counter() - started
        wait_until(lambda: _mirror_titles(st, schema, prefix) >= n, 3600, interval=0.5,
                   what="every new title in PostgreSQL")
        seconds = time.perf_counter() - started
        counters = st.sandbox.limits()["counters"]
        deliveries = st.sandbox.deliveries(kind="event")[before:]
        sent = sum(1 for d in deliveries if d["status"] == "sent")
        calls = counters["requests_total"]
        lines.append(line("events.hub24", events=n, delivered=sent, seconds=seconds, change_s=changed_s,
                          delivery_s=delivered_s, rest_calls=calls, calls_share=calls / n,
                          calls_by_method=",".join(f"{k}:{v}" for k, v in sorted(counters["requests"].items())),
                          http_503=counters["rejected_rate"], vs_theory=seconds / theory["t_min_s"],
                          vs_delivery=seconds / delivered_s))

        with st.app_context():
            from app.sync import service, verify

            sync = service.open_sync(service._portal(st.portal_id))
            cmp = verify.compare(sync, sync.spec("deal"))
        lines.append(line("events.check", deals=cmp.portal_rows, mirror_identical=cmp.ok,
                          calls_share_ok=calls <= n / 100))
    return lines
