"""Reading a portal's CRM through the gateway, in as few calls as Bitrix24's limits allow.

* `keyset_pages` — the fast export of the docs: `start=-1` (no count), ordered by id, `>id` the last id
  seen; up to 50 pages chained in one batch call with `$result[...]` references, so one call reads up
  to 2,500 records. A page shorter than 50 ends the stream; later pages of that batch (whose reference
  could not resolve) are ignored. Yields one chunk per batch call with the cursor to resume from.
* `read_by_ids` — records by id (50 ids per command, 50 commands per batch: 2,500 per call) for
  coalesced events and repairs; ids that come back missing were deleted in the portal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from ..bitrix.errors import RATE_CODES, BatchCommandError, IncompleteListError, RateLimited

PAGE = 50
BATCH = 50
MAX_IDLE_PAUSES = 10  # rate-limit waits in a row that let no page through before giving up


class Gateway(Protocol):
    """What extraction needs from app.bitrix.client.PortalClient."""

    def call(self, method: str, params: dict | None = None) -> Any: ...

    def batch(self, commands: dict[str, tuple[str, dict]], halt: bool = False) -> dict[str, Any]: ...

    # optional: `pause(code, method)` waits out a rate limit met inside a batch (the gateway has it)


@dataclass
class Chunk:
    records: Any  # list[dict]; a `load.Staged` once a full sync's fetching thread prepared it
    cursor: int  # the last id of this chunk: resume from here
    calls: int  # REST calls this chunk cost
    done: bool  # no records after this chunk


def _items(result: Any) -> list[dict]:
    if isinstance(result, dict):
        return list(result.get("items") or [])
    return list(result or [])


def keyset_pages(client: Gateway, method: str, params: dict, *, after_id: int = 0, id_field: str = "id",
                 upper_id: int | None = None, extra_filter: dict | None = None,
                 pages_per_call: int = BATCH) -> Iterator[Chunk]:
    """Stream every record with id > `after_id` (and <= `upper_id`), ordered by id, one batch call per chunk.

    When pages inside a batch are refused by a rate limit (OPERATION_TIME_LIMIT once a large portal has
    spent its operating time), the pages before them are yielded, the client waits (`pause`) and reading
    goes on from the last id. Raises IncompleteListError when a page answers something that is not a page
    (never a short list), RateLimited after MAX_IDLE_PAUSES waits in a row that let nothing through.
    """
    base_filter = dict(extra_filter or {})
    if upper_id is not None:
        base_filter[f"<={id_field}"] = upper_id
    items_key = "[items]" if method == "crm.item.list" else ""
    last = after_id
    idle_pauses = 0
    while True:
        commands: dict[str, tuple[str, dict]] = {}
        for n in range(pages_per_call):
            flt = dict(base_filter)
            flt[f">{id_field}"] = last if n == 0 else f"$result[p{n - 1}]{items_key}[{PAGE - 1}][{id_field}]"
            commands[f"p{n}"] = (method, {**params, "filter": flt, "order": {id_field: "ASC"}, "start": -1})
        results, limited = _batch(client, commands)
        records: list[dict] = []
        done = False
        prev_last = last
        for n in range(pages_per_call):
            key = f"p{n}"
            if key not in results:
                if limited:
                    break  # this page and the ones chained to it wait for the limit
                raise IncompleteListError("", f"page {key} of {method} missing from the batch answer", method=method)
            page = _items(results[key])
            if page:
                first_id = int(page[0][id_field])
                if first_id <= prev_last:
                    raise IncompleteListError("", f"{method} returned id {first_id} after {prev_last}", method=method)
                prev_last = int(page[-1][id_field])
                records.extend(page)
            if len(page) < PAGE:
                done = True
                break
        last = prev_last
        if upper_id is not None and last >= upper_id:
            done = True
        if limited and not done:
            if records:
                yield Chunk(records, last, 1, False)
            idle_pauses = _wait_out(client, limited, method, idle_pauses, progressed=bool(records))
            continue
        yield Chunk(records, last, 1, done)
        if done:
            return


def _batch(client: Gateway, commands: dict[str, tuple[str, dict]]) -> tuple[dict[str, Any], str | None]:
    """Run a batch; when some commands were refused by a rate limit (and the client can wait), return what
    succeeded and the limit's code instead of raising."""
    try:
        return client.batch(commands), None
    except BatchCommandError as exc:
        errors = getattr(exc, "errors", None) or {}
        codes = {str(e.get("error", "")).upper() for e in errors.values()}
        if not codes or not codes <= RATE_CODES or not hasattr(client, "pause"):
            raise
        return dict(getattr(exc, "results", None) or {}), (exc.code or next(iter(codes))).upper()


def _wait_out(client: Gateway, code: str, method: str, idle_pauses: int, *, progressed: bool) -> int:
    """Let the client wait out rate limit `code`; returns the count of waits in a row that let nothing
    through, raising RateLimited once it passes MAX_IDLE_PAUSES."""
    idle_pauses = 0 if progressed else idle_pauses + 1
    if idle_pauses > MAX_IDLE_PAUSES:
        raise RateLimited(code, f"{method} stayed rate-limited through {MAX_IDLE_PAUSES} waits", method=method)
    client.pause(code, method)  # type: ignore[attr-defined]
    return idle_pauses


def read_by_ids(client: Gateway, method: str, params: dict, ids: Sequence[int], *, id_field: str = "id") -> Iterator[Chunk]:
    """Read records by id, 2,500 per call; yields chunks. Missing ids are simply absent (deleted).

    Commands refused by a rate limit are sent again after the client's `pause` (their ids are not "missing").
    """
    ids = sorted(set(int(i) for i in ids))
    per_call = PAGE * BATCH
    for start in range(0, len(ids), per_call):
        window = ids[start:start + per_call]
        pending = {f"i{n}": (method, {**params, "filter": {f"@{id_field}": window[k:k + PAGE]}, "start": -1})
                   for n, k in enumerate(range(0, len(window), PAGE))}
        got: dict[str, Any] = {}
        calls, idle_pauses = 0, 0
        while pending:
            results, limited = _batch(client, pending)
            calls += 1
            got.update(results)
            pending = {k: v for k, v in pending.items() if k not in results} if limited else {}
            if pending:
                idle_pauses = _wait_out(client, limited or "", method, idle_pauses, progressed=bool(results))
        keys = [f"i{n}" for n in range(-(-len(window) // PAGE))]
        records = [r for key in keys for r in _items(got.get(key))]
        yield Chunk(records, window[-1], calls, start + per_call >= len(ids))


def max_id(client: Gateway, method: str, params: dict, *, id_field: str = "id") -> int:
    """The largest id of an entity (0 when empty): one call."""
    result = client.call(method, {**params, "select": [id_field], "order": {id_field: "DESC"}, "start": -1})
    page = _items(result)
    return int(page[0][id_field]) if page else 0


def id_windows(after_id: int, max_id: int, calls_per_window: int, max_windows: int) -> list[tuple[int, int]]:
    """Split ids (after_id, max_id] into at most `max_windows` ranges of about `calls_per_window` batch calls each."""
    span = max_id - after_id
    if span <= 0:
        return []
    per_call = PAGE * BATCH
    wanted = max(1, min(max_windows, -(-span // (per_call * max(1, calls_per_window)))))
    step = -(-span // wanted)
    return [(lo, min(lo + step, max_id)) for lo in range(after_id, max_id, step)]


def parallel_keyset(clients: Sequence[Gateway], method: str, params: dict, windows: Sequence[tuple[int, int]], *,
                    thread_context: Any = None, id_field: str = "id", buffer: int = 4,
                    prepare: Callable[[list[dict]], Any] | None = None, idle: Callable[[], None] | None = None,
                    idle_every: float = 30.0) -> Iterator[tuple[int, Chunk]]:
    """Read id windows concurrently (one thread per client, each taking the next window); yield
    (window index, chunk) as they land. Pass fewer clients than windows to bound the calls in flight.

    Fetching runs in threads (waiting on the network); the caller transforms and loads in its own thread,
    so fetching and loading overlap. At most `buffer` chunks wait in memory. `prepare`, when given, turns
    each chunk's records into what the loader takes (`load.Staged`) in the fetching thread, so a chunk
    waiting in the queue holds compact bytes rather than parsed records. `idle` is called every
    `idle_every` seconds in which no chunk lands (fetchers waiting out a rate limit), in the caller's
    thread, so it can show the run is alive. The first error in any window stops the others and is
    raised here.
    """
    import contextlib
    import queue
    import threading

    out: queue.Queue = queue.Queue(maxsize=max(1, buffer))
    stop = threading.Event()
    todo: queue.Queue = queue.Queue()
    for i, w in enumerate(windows):
        todo.put((i, w))
    done_marker = object()

    def worker(client: Gateway) -> None:
        ctx = thread_context() if thread_context else contextlib.nullcontext()
        try:
            with ctx:
                while not stop.is_set():
                    try:
                        index, (lo, hi) = todo.get_nowait()
                    except queue.Empty:
                        break
                    for chunk in keyset_pages(client, method, params, after_id=lo, upper_id=hi, id_field=id_field):
                        if stop.is_set():
                            return
                        if prepare is not None:
                            chunk.records = prepare(chunk.records)
                        out.put((index, chunk))
        except BaseException as exc:  # handed to the consumer, who raises it
            stop.set()
            out.put(exc)
        finally:
            out.put(done_marker)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True, name=f"sync-fetch-{n}")
               for n, c in enumerate(clients[:max(1, len(windows))])]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            try:
                item = out.get(timeout=idle_every if idle else None)
            except queue.Empty:
                idle()  # type: ignore[misc]
                continue
            if item is done_marker:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock producers waiting on a full queue
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass
        for t in threads:
            t.join(timeout=5)
