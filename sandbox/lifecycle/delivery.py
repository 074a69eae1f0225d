"""Portal-to-app HTTP: form encoding with PHP bracket keys and the background delivery worker.

Bitrix24 posts events, install/uninstall callbacks and robot invocations from its queue server, never
inside the REST request that caused them, and never retries an online delivery (PROTOCOL.md §5.3).
`Deliverer` models that queue: one daemon thread per sandbox, jobs optionally delayed, every attempt
recorded (the admin API lists the records). Frame POSTs (app page, placements) are what a browser
does, so `post_frame` sends them synchronously.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

HTTP_TIMEOUT = 10.0


def php_form(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested dicts/lists into PHP bracket keys (`auth[access_token]`, `document_id[0]`).

    Scalars become strings as a form POST delivers them: ``True``/``False`` -> ``"1"``/``"0"``,
    ``None`` -> ``""``. Empty containers are omitted, as PHP's `http_build_query` omits them.
    """
    out: list[tuple[str, str]] = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        if isinstance(data, bool):
            value = "1" if data else "0"
        elif data is None:
            value = ""
        else:
            value = str(data)
        return [(prefix, value)]
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        out.extend(php_form(value, name))
    return out


@dataclass
class Delivery:
    """One portal-to-app request and its outcome."""

    id: int
    member_id: str
    client_id: str
    kind: str  # install | update | uninstall | event | robot | frame
    event: str
    url: str
    payload: dict
    query: dict = field(default_factory=dict)
    status: str = "queued"  # queued | delayed | sent | failed | dropped
    http_status: int | None = None
    response: str = ""
    error: str = ""
    created: float = field(default_factory=time.time)
    sent_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "member_id": self.member_id, "client_id": self.client_id, "kind": self.kind,
                "event": self.event, "url": self.url, "payload": self.payload, "query": self.query,
                "status": self.status, "http_status": self.http_status, "response": self.response,
                "error": self.error, "created": self.created, "sent_at": self.sent_at}


def _send(d: Delivery) -> None:
    try:
        resp = requests.post(d.url, params=d.query or None, data=php_form(d.payload), timeout=HTTP_TIMEOUT,
                             allow_redirects=False)
        d.http_status = resp.status_code
        d.response = resp.text[:4000]
        d.status = "sent" if resp.status_code < 400 else "failed"
    except requests.RequestException as exc:
        d.status = "failed"
        d.error = type(exc).__name__
    d.sent_at = time.time()


def post_frame(member_id: str, client_id: str, url: str, query: dict, body: dict, kind: str = "frame",
               record: "Deliverer | None" = None) -> Delivery:
    """POST a frame as the user's browser would (query string + form body), synchronously."""
    d = Delivery(0, member_id, client_id, kind, str(body.get("PLACEMENT", "")), url, body, dict(query))
    if record is not None:
        record.add_record(d)
    _send(d)
    return d


class Deliverer:
    """The sandbox's queue server: a daemon thread that posts queued deliveries once each."""

    def __init__(self) -> None:
        self.records: list[Delivery] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._cond = threading.Condition()
        self._busy = 0
        self._thread = threading.Thread(target=self._run, name="sandbox-deliveries", daemon=True)
        self._thread.start()

    def add_record(self, d: Delivery) -> Delivery:
        with self._cond:
            d.id = next(self._ids)
            self.records.append(d)
        return d

    def submit(self, d: Delivery, delay: float = 0.0, drop: bool = False) -> Delivery:
        """Queue `d` for delivery after `delay` seconds; `drop` records it as lost and never sends it."""
        with self._cond:
            d.id = next(self._ids)
            self.records.append(d)
            if drop:
                d.status = "dropped"
                return d
            if delay > 0:
                d.status = "delayed"
            heapq.heappush(self._heap, (time.time() + delay, next(self._seq), d))
            self._cond.notify_all()
        return d

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery (delayed ones included) has been attempted."""
        deadline = time.time() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.time():
                    wait = (self._heap[0][0] - time.time()) if self._heap else None
                    self._cond.wait(wait if wait is None else max(wait, 0.001))
                _, _, d = heapq.heappop(self._heap)
                self._busy += 1
            try:
                _send(d)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()


def deliverer(sandbox: Any) -> Deliverer:
    """The sandbox's `Deliverer`, created on first use."""
    with sandbox.lock:
        d = getattr(sandbox, "deliverer", None)
        if d is None:
            d = sandbox.deliverer = Deliverer()
        return d
