"""Benchmark 2 — unlimited: a full sync of N deals from a sandbox with `--limits off`.

End-to-end rows/s (read over HTTP, transformed, written to PostgreSQL) against a raw `COPY` of the very
same rows into an identical table of the same database; and the peak memory of the syncing process.
"""
from __future__ import annotations

import io
import time

from .common import PeakRss, line, make_app, migrate, sandbox_process, services, webhook_portal


def run(deals: int = 200_000) -> list[str]:
    lines = []
    with services() as svc, sandbox_process(deals, "off") as (base, _):
        app = make_app(svc, base)
        migrate(app)
        pid, _sb, _hook = webhook_portal(app, base, plan="unlimited")
        from sqlalchemy import text

        from app.sync import service

        with app.app_context():
            sync = service.open_sync(service._portal(pid))
            spec = sync.spec("deal")
            sync.refresh_reference()
            sync.prepare(spec)
            with PeakRss() as mem:
                started = time.perf_counter()
                run_ = sync.full(spec, restart=True)
                e2e = time.perf_counter() - started
            rows = run_.rows_written
            conn = sync.session.connection()
            table = f'"{sync.schema}"."deals"'
            # The baseline: the same rows, as PostgreSQL's own text, copied into an identical empty table.
            dump = io.BytesIO()
            cur = conn.connection.dbapi_connection.cursor()
            cur.copy_expert(f"COPY {table} TO STDOUT", dump)
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{sync.schema}".copy_baseline')
            conn.exec_driver_sql(f'CREATE TABLE "{sync.schema}".copy_baseline (LIKE {table} INCLUDING ALL)')
            sync.session.commit()
            conn = sync.session.connection()
            cur = conn.connection.dbapi_connection.cursor()
            dump.seek(0)
            started = time.perf_counter()
            cur.copy_expert(f'COPY "{sync.schema}".copy_baseline FROM STDIN', dump)
            sync.session.commit()
            copy_s = time.perf_counter() - started
            conn = sync.session.connection()
            copied = conn.execute(text(f'SELECT count(*) FROM "{sync.schema}".copy_baseline')).scalar()
            conn.exec_driver_sql(f'DROP TABLE "{sync.schema}".copy_baseline')
            sync.session.commit()
        lines.append(line("unlimited.hub24", rows=rows, seconds=e2e, rate=rows / e2e, calls=run_.calls_made,
                          peak_rss_mb=mem.peak / 2**20))
        lines.append(line("unlimited.raw_copy", rows=copied, seconds=copy_s, rate=copied / copy_s,
                          mb=dump.getbuffer().nbytes / 2**20))
        lines.append(line("unlimited.ratio", hub24_vs_raw_copy=(rows / e2e) / (copied / copy_s),
                          peak_rss_mb=mem.peak / 2**20, under_500mb=mem.peak < 500 * 2**20))
    return lines
