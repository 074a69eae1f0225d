"""Housekeeping jobs run by the scheduler on the `maintenance` queue."""
from __future__ import annotations

import time

from rq.registry import clean_registries

from .jobs import QUEUES, get_queue, redis_connection

HEARTBEAT_KEY = "hub24:cron:heartbeat"


def scheduler_heartbeat() -> float:
    """Record that the scheduler and a maintenance worker are alive (read by /health)."""
    now = time.time()
    redis_connection().set(HEARTBEAT_KEY, now, ex=3600)
    return now


def clean_job_registries() -> int:
    """Drop expired entries from every queue's RQ registries; returns how many queues were cleaned."""
    for name in QUEUES:
        clean_registries(get_queue(name))
    return len(QUEUES)
