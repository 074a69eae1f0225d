"""Concurrent loading for full syncs: chunks are written by a few threads, each with its own connection.

PostgreSQL runs one statement per connection on one core; with the loader on a second connection, one
chunk is typed and merged while the next is being copied in. Completion order is not arrival order, so
callers hear about each chunk when its transaction has committed (`submit` and `drain` hand back the
chunks that landed), which is what the resume cursor needs.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy.orm import Session

from .columns import Column
from .load import load_records


class Loaders:
    """A small pool of loading threads; at most `2 × threads` chunks wait in memory."""

    def __init__(self, threads: int, session_factory: Callable[[], Session], thread_context: Callable[[], Any] | None,
                 schema: str, table: str, columns: Sequence[Column]):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sync-load")
        self._local = threading.local()
        self._sessions: list[Session] = []
        self._lock = threading.Lock()
        self._factory, self._context = session_factory, thread_context
        self._schema, self._table, self._columns = schema, table, list(columns)
        self._pending: set[Future] = set()
        self._limit = threads * 2

    def _load(self, records: list[dict]) -> int:
        session = getattr(self._local, "session", None)
        if session is None:
            ctx = self._context() if self._context else None
            if ctx is not None:
                ctx.push()
                self._local.ctx = ctx
            session = self._local.session = self._factory()
            with self._lock:
                self._sessions.append(session)
        try:
            written = load_records(session.connection(), self._schema, self._table, self._columns, records)
            session.commit()
            return written
        except BaseException:
            session.rollback()
            raise

    def submit(self, tag: Any, records: list[dict]) -> Iterator[tuple[Any, int]]:
        """Queue a chunk; yields (tag, rows written) for chunks that committed meanwhile (blocks when full)."""
        fut = self._pool.submit(self._load, records)
        fut.tag = tag  # type: ignore[attr-defined]
        self._pending.add(fut)
        while len(self._pending) >= self._limit:
            yield from self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)
        yield from self._collect([f for f in self._pending if f.done()])

    def drain(self) -> Iterator[tuple[Any, int]]:
        """Wait for every queued chunk; yields (tag, rows written). Raises the first loading error."""
        while self._pending:
            yield from self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)

    def _collect(self, done) -> Iterator[tuple[Any, int]]:
        for fut in list(done):
            self._pending.discard(fut)
            yield fut.tag, fut.result()  # re-raises a loader's exception here

    def close(self) -> None:
        """Stop the threads and close their sessions (after `drain`, or to abandon on error)."""
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for session in self._sessions:
            session.close()
