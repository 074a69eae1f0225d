"""Bitrix24's limits for one portal: the leaky bucket, the operating-time budget and the cost model.

* Leaky bucket (PROTOCOL.md §4.1): each request adds 1 to the portal's counter, which drains at
  ``drain`` per second; a request arriving when the counter has reached ``threshold`` gets 503
  ``QUERY_LIMIT_EXCEEDED`` (and does not fill the bucket). A batch is one request.
* Operating time (§4.2): server seconds spent per method × app/webhook, summed in ten one-minute
  buckets; past ``operating_limit`` the method answers 429 ``OPERATION_TIME_LIMIT`` until the oldest
  buckets expire. Nested batch calls count against their own methods.
* Cost model: the server seconds a call "costs" (charged to the operating budget, shown as
  ``processing``, and optionally slept). A counted list page scales with the table size — the docs
  measured 49.9 s for 2,387,743 rows — while a ``start=-1`` keyset page costs ~0.1 s whatever the size.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

from .core import PLAN_LIMITS, PortalState

BUCKET_SECONDS = 60
BUCKETS = 10
BASE_COST = 0.004  # seconds: an ordinary get/add/update
COUNTED_ROW_COST = 49.9 / 2_387_743  # seconds per row for a list page that counts `total` (§4.4)
KEYSET_PAGE_COST = 0.097  # seconds for a start=-1 page on the same 2.39M-row table (§4.4)
KEYSET_SCALE_ROWS = 2_387_743
SCAN_ROW_COST = 2e-6  # seconds per row examined by an unindexed filter without a count


def list_cost(table_rows: int, counted: bool, keyset: bool, scanned: int) -> float:
    """Server seconds of one list page (see the module docstring)."""
    if counted:
        return BASE_COST + table_rows * COUNTED_ROW_COST
    if keyset:
        return BASE_COST + KEYSET_PAGE_COST * min(1.0, max(table_rows, 1) / KEYSET_SCALE_ROWS) ** 0.25
    return BASE_COST + scanned * SCAN_ROW_COST


class Limiter:
    """Rate and operating-time limits of one portal. Thread-safe."""

    def __init__(self, plan: str, operating_limit: float, latency_ms: float = 0.0, cost_sleep: float = 0.0,
                 clock=time.monotonic, wall=time.time):
        self.plan = plan
        self.drain, self.threshold = PLAN_LIMITS.get(plan, (0.0, 0))
        self.enabled = plan in PLAN_LIMITS
        self.operating_limit = operating_limit
        self.latency_ms = latency_ms
        self.cost_sleep = cost_sleep  # share of the modelled cost actually slept (0 = none)
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()
        self._level = 0.0
        self._last = clock()
        # (method, budget_key) -> deque of [bucket_start_wall, seconds]
        self._operating: dict[tuple[str, str], deque] = defaultdict(deque)
        self.rejected_rate = 0
        self.rejected_operating = 0
        self.requests: dict[str, int] = defaultdict(int)  # HTTP requests answered, by top-level method

    def params(self) -> dict[str, Any]:
        """The limiter's parameters (benchmarks derive theoretical maxima from them)."""
        return {"plan": self.plan, "enabled": self.enabled, "drain_per_second": self.drain,
                "threshold": self.threshold, "operating_limit": self.operating_limit,
                "operating_window": BUCKET_SECONDS * BUCKETS, "bucket_seconds": BUCKET_SECONDS,
                "latency_ms": self.latency_ms, "cost_sleep": self.cost_sleep,
                "counted_row_cost": COUNTED_ROW_COST, "keyset_page_cost": KEYSET_PAGE_COST,
                "base_cost": BASE_COST}

    # -- leaky bucket -------------------------------------------------------------------------
    def admit(self) -> bool:
        """Count one incoming request; False means answer 503 QUERY_LIMIT_EXCEEDED."""
        if not self.enabled:
            return True
        with self._lock:
            now = self._clock()
            self._level = max(0.0, self._level - (now - self._last) * self.drain)
            self._last = now
            if self._level + 1 > self.threshold + 1e-9:
                self.rejected_rate += 1
                return False
            self._level += 1
            return True

    def count_request(self, method: str) -> None:
        """Count one HTTP request that reached a method (benchmarks read these counters)."""
        with self._lock:
            self.requests[method.lower()] += 1

    def counters(self) -> dict[str, Any]:
        """Requests by method, 503s and 429s given, and the bucket's level now."""
        with self._lock:
            requests = dict(self.requests)
        return {"requests": requests, "requests_total": sum(requests.values()), "rejected_rate": self.rejected_rate,
                "rejected_operating": self.rejected_operating, "level": round(self.level, 3)}

    @property
    def level(self) -> float:
        with self._lock:
            return max(0.0, self._level - (self._clock() - self._last) * self.drain)

    def reset(self) -> None:
        """Empty the bucket and forget operating time (tests, admin API)."""
        with self._lock:
            self._level = 0.0
            self._operating.clear()
            self.requests.clear()
            self.rejected_rate = self.rejected_operating = 0

    # -- operating time -----------------------------------------------------------------------
    def _expire(self, q: deque, now: float) -> None:
        while q and q[0][0] + BUCKET_SECONDS * BUCKETS <= now:
            q.popleft()

    def operating(self, method: str, budget_key: str) -> tuple[float, int | None]:
        """(seconds used in the window, unix time the oldest bucket expires)."""
        with self._lock:
            q = self._operating.get((method, budget_key))
            if not q:
                return 0.0, None
            now = self._wall()
            self._expire(q, now)
            if not q:
                return 0.0, None
            return sum(b[1] for b in q), int(q[0][0] + BUCKET_SECONDS * BUCKETS)

    def check_operating(self, method: str, budget_key: str) -> bool:
        """False when the method is over its budget for this app/webhook (answer 429)."""
        if not self.enabled or self.operating_limit <= 0:
            return True
        used, _ = self.operating(method, budget_key)
        if used > self.operating_limit:
            self.rejected_operating += 1
            return False
        return True

    def charge(self, method: str, budget_key: str, seconds: float) -> None:
        """Add server seconds to the method's current one-minute bucket."""
        now = self._wall()
        with self._lock:
            q = self._operating[(method, budget_key)]
            self._expire(q, now)
            if q and now - q[-1][0] < BUCKET_SECONDS:
                q[-1][1] += seconds
            else:
                q.append([now, seconds])

    def sleep_for(self, cost: float) -> None:
        """Sleep the modelled share of a call's cost (optional realism for benchmarks)."""
        if self.cost_sleep > 0 and cost > 0:
            time.sleep(cost * self.cost_sleep)

    def sleep_latency(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)


def attach(portal: PortalState) -> Limiter:
    """Give a portal its limiter from the sandbox configuration."""
    cfg = portal.sandbox.config
    plan = cfg.limits if cfg.limits != "standard" else (portal.plan if portal.plan in PLAN_LIMITS else "standard")
    portal.limiter = Limiter(plan, cfg.operating_limit, cfg.latency_ms, getattr(cfg, "cost_sleep", 0.0))
    return portal.limiter
