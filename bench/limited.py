"""Benchmark 1 — limited: a full sync of N deals from a sandbox on `--limits standard` with its cost model.

Prints Hub24's records/s against the theoretical maximum under the sandbox's own limits (`theoretical`),
against a client that only reads by the theory's own plan on this machine (`ideal_reader`), and against
the two public clients (b24pysdk `as_list_fast`, fast_bitrix24 `get_all`) reading the same deals from the
same sandbox (reading only; Hub24 also writes every row to PostgreSQL).
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .common import line, make_app, migrate, sandbox_process, services, webhook_portal

CAP_SECONDS = 120.0  # a contender still reading after this long is measured on what it read so far


def theoretical(params: dict, rows: int, table_rows: int) -> dict:
    """The fastest any client could read `rows` under the sandbox's limits, and the plan that does it.

    The limits (PROTOCOL.md §4): the bucket admits `threshold` requests at once, then `drain` per second;
    a batch request carries at most 50 keyset pages of 50 records, run one after another, each taking its
    modelled server time (`cost_sleep` of it is really slept) plus the request's `latency_ms`; the
    operating budget admits `operating_limit` server seconds per `operating_window` and method. A client
    may split the pages over as many requests as the bucket admits, so the bound is the smallest T for
    which the requests admitted by T, each carrying as many pages as fit before T, hold every page.
    """
    from sandbox.limits import list_cost

    page = list_cost(table_rows, counted=False, keyset=True, scanned=0)
    page_s = page * params["cost_sleep"]
    latency = params["latency_ms"] / 1000
    pages = math.ceil(rows / 50)  # id windows end at a known id: no short page is needed to stop
    burst, drain = int(params["threshold"]) or 1, params["drain_per_second"]

    def capacity(t: float) -> tuple[int, int]:
        """(pages, requests) that can finish by time t."""
        got = calls = 0
        j = 0
        while True:
            start = 0.0 if j < burst else ((j - burst + 1) / drain if drain else float("inf"))
            room = t - start - latency
            if room < 0 or start == float("inf"):
                return got, calls
            fit = 50 if page_s <= 0 else min(50, int(room / page_s + 1e-9))
            if fit <= 0:
                return got, calls
            got += fit
            calls += 1
            if got >= pages:
                return got, calls
            j += 1

    lo, hi = 0.0, latency + 50 * page_s + max(0, pages / 50 - burst) / (drain or 1) + 1.0
    for _ in range(60):  # bisection on T
        mid = (lo + hi) / 2
        if capacity(mid)[0] >= pages:
            hi = mid
        else:
            lo = mid
    t_min = hi
    server = pages * page
    if params["operating_limit"] and server > params["operating_limit"]:
        t_min = max(t_min, (server / params["operating_limit"] - 1) * params["operating_window"])
    calls = capacity(t_min)[1]
    return {"page_cost_s": page, "pages": pages, "calls": calls, "pages_per_call": math.ceil(pages / calls),
            "t_min_s": t_min, "max_rate": rows / t_min if t_min else float("inf")}


def ideal_reader(hook_url: str, rows: int, calls: int) -> float:
    """Seconds a client that does nothing but read needs on this machine: the theoretical plan's requests
    (the id range split evenly, keyset pages chained in one batch each) all sent at once, the answers
    received whole and thrown away. What separates it from the theory is the sandbox's own CPU (it renders
    and serialises every record) on the cores the benchmark shares."""
    per = math.ceil(rows / calls)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=calls)
    session.mount("http://", adapter)

    def one(lo: int) -> int:
        hi = min(lo + per, rows)
        cmd = {}
        for n in range(math.ceil((hi - lo) / 50)):
            after = str(lo) if n == 0 else f"$result[p{n - 1}][items][49][id]"
            cmd[f"p{n}"] = (f"crm.item.list?entityTypeId=2&select[]=*&select[]=UF_*&useOriginalUfNames=Y"
                            f"&filter[>id]={after}&filter[<=id]={hi}&order[id]=ASC&start=-1")
        r = session.post(hook_url + "batch", json={"cmd": cmd, "halt": 0}, timeout=120)
        r.raise_for_status()
        return len(r.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=calls) as pool:
        list(pool.map(one, range(0, rows, per)))
    elapsed = time.perf_counter() - started
    session.close()  # no idle keep-alive connections left holding the sandbox's threads
    return elapsed


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
                          calls=theory["calls"], pages_per_call=theory["pages_per_call"], t_min_s=theory["t_min_s"],
                          max_rate=theory["max_rate"]))
        # The same plan by a client that only reads: how much of the theory this machine allows at all.
        sb.limits(reset=True)
        ideal_s = ideal_reader(hook_url, deals, theory["calls"])
        sb.limits(reset=True)  # the reader spent the burst: the portal's bucket starts empty again for Hub24
        ideal_rate = deals / ideal_s
        lines.append(line("limited.ideal_reader", rows=deals, seconds=ideal_s, rate=ideal_rate,
                          vs_theory=ideal_rate / theory["max_rate"]))

        # Hub24: full sync of deals, writing to PostgreSQL.
        from app.sync import service

        with app.app_context():
            sync = service.open_sync(service._portal(pid))
            spec = sync.spec("deal")
            sync.refresh_reference()
            sync.prepare(spec)
            sb.limits(reset=True)
            sync.client.limiter.reset()  # both buckets empty, as for the reader: a portal idle for a minute
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
                          ideal_reader_vs_theory=ideal_rate / theory["max_rate"], hub24_vs_ideal_reader=hub_rate / ideal_rate,
                          hub24_vs_best_library=hub_rate / best if best else float("inf")))
    return lines
