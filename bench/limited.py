"""Benchmark 1 — limited: a full sync of N deals from a sandbox on `--limits standard` with its cost model.

Prints Hub24's records/s against the theoretical maximum under the sandbox's own limits, and against
the two public clients (b24pysdk `as_list_fast`, fast_bitrix24 `get_all`) reading the same deals from the
same sandbox (reading only; Hub24 also writes every row to PostgreSQL).
"""
from __future__ import annotations

import math
import threading
import time

from .common import line, make_app, migrate, sandbox_process, services, webhook_portal

CAP_SECONDS = 120.0  # a contender still reading after this long is measured on what it read so far


def theoretical(params: dict, rows: int, table_rows: int) -> dict:
    """The fastest any client could read `rows` under the limits (bucket, operating budget, per-call server time).

    A keyset page costs its modelled server time; a batch call carries at most 50 pages (2,500 records)
    and takes the sum of its pages' time; the bucket admits `threshold` calls at once, then `drain` per
    second; the operating budget admits `operating_limit` server seconds per `operating_window`.
    """
    from sandbox.limits import list_cost

    page = list_cost(table_rows, counted=False, keyset=True, scanned=0)
    pages = math.ceil(rows / 50) + 1  # + the short page that ends the stream
    calls = math.ceil(pages / 50)
    call_time = 50 * page * params["cost_sleep"] + params["latency_ms"] / 1000
    in_flight = max(1, int(params["threshold"]))
    t_calls = call_time * math.ceil(calls / in_flight)
    t_rate = max(0, calls - params["threshold"]) / params["drain_per_second"] if params["drain_per_second"] else 0.0
    server = pages * page
    t_operating = 0.0
    if params["operating_limit"] and server > params["operating_limit"]:
        t_operating = (server / params["operating_limit"] - 1) * params["operating_window"]
    t_min = max(t_calls, t_rate + call_time, t_operating)
    return {"page_cost_s": page, "calls": calls, "call_time_s": call_time, "t_min_s": t_min,
            "max_rate": rows / t_min if t_min else float("inf")}


def _timed(fn, cap: float = CAP_SECONDS) -> tuple[int, float]:
    """Run fn(stop_event) -> records read, stopping it at `cap`; returns (records, seconds)."""
    stop = threading.Event()
    box: dict = {"n": 0}
    started = time.perf_counter()

    def target() -> None:
        try:
            box["n"] = fn(stop, box)
        except Exception as exc:  # a contender that fails is measured on what it read
            box["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(cap)
    stop.set()
    elapsed = time.perf_counter() - started
    return box["n"], elapsed, box.get("error")


def run(deals: int = 50_000) -> list[str]:
    lines = []
    with services() as svc, sandbox_process(deals, "standard", cost_sleep=1.0) as (base, _):
        app = make_app(svc, base)
        migrate(app)
        pid, sb, hook_url = webhook_portal(app, base)
        info = sb.limits()
        params, table = info["params"], info["tables"]["2"]
        theory = theoretical(params, deals, table)
        lines.append(line("limited.theory", deals=deals, drain=params["drain_per_second"], burst=params["threshold"],
                          operating_limit=params["operating_limit"], page_cost_s=theory["page_cost_s"],
                          calls=theory["calls"], t_min_s=theory["t_min_s"], max_rate=theory["max_rate"]))

        # Hub24: full sync of deals, writing to PostgreSQL.
        from app.sync import service

        with app.app_context():
            sync = service.open_sync(service._portal(pid))
            spec = sync.spec("deal")
            sync.refresh_reference()
            sync.prepare(spec)
            sb.limits(reset=True)
            started = time.perf_counter()
            run_ = sync.full(spec, restart=True)
            hub_s = time.perf_counter() - started
        counters = sb.limits()["counters"]
        hub_rate = run_.rows_read / hub_s
        lines.append(line("limited.hub24", rows=run_.rows_read, seconds=hub_s, rate=hub_rate, calls=run_.calls_made,
                          http_503=counters["rejected_rate"], http_429=counters["rejected_operating"],
                          vs_theory=hub_rate / theory["max_rate"]))

        # b24pysdk as_list_fast (reading only).
        from b24pysdk import BitrixWebhook, Client

        domain, token = hook_url.split("//", 1)[1].split("/rest/", 1)
        client = Client(BitrixWebhook(domain=domain, webhook_token=token.strip("/")))

        def sdk(stop, box):
            n = 0
            for _ in client.crm.item.list(entity_type_id=2, select=["*", "UF_*"]).as_list_fast().result:
                n += 1
                box["n"] = n
                if stop.is_set():
                    break
            return n

        sb.limits(reset=True)
        with app.app_context():  # the SDK switch (http for the sandbox) is applied by create_app
            n_sdk, s_sdk, e_sdk = _timed(sdk)
        sdk_rate = n_sdk / s_sdk
        lines.append(line("limited.b24pysdk_as_list_fast", rows=n_sdk, seconds=s_sdk, rate=sdk_rate,
                          complete=n_sdk >= deals, **({"error": e_sdk} if e_sdk else {})))

        # fast_bitrix24 get_all (reading only).
        from fast_bitrix24 import Bitrix

        def fb(stop, box):
            b = Bitrix(hook_url, verbose=False)
            rows = b.get_all("crm.item.list", params={"entityTypeId": 2, "select": ["*", "UF_*"]})
            return len(rows)

        sb.limits(reset=True)
        n_fb, s_fb, e_fb = _timed(fb)
        fb_rate = n_fb / s_fb
        lines.append(line("limited.fast_bitrix24_get_all", rows=n_fb, seconds=s_fb, rate=fb_rate,
                          complete=n_fb >= deals, **({"error": e_fb} if e_fb else {})))
        best = max(sdk_rate, fb_rate)
        lines.append(line("limited.ratio", hub24_vs_theory=hub_rate / theory["max_rate"],
                          hub24_vs_best_library=hub_rate / best if best else float("inf")))
    return lines
