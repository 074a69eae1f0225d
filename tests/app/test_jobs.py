"""RQ wiring: queues, de-duplicating enqueue, retries on failure, the worker command and the cron table."""
import pytest
from rq import Retry
from rq.job import Job

from app.jobs import QUEUES, build_cron, enqueue, get_queue, job_key, periodic_jobs
from app.maintenance import HEARTBEAT_KEY


def test_queues_are_the_designed_ones():
    assert QUEUES == ("events", "sync", "charts", "integrations", "maintenance")
    with pytest.raises(ValueError, match="unknown queue"):
        get_queue("default")


def test_deterministic_job_id_deduplicates(app, redis_conn):
    key = job_key("sync", "portal.example.com", "deal")
    a = enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key)
    b = enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key)
    assert a.id == b.id
    assert job_key("sync", "a.b") != job_key("sync", "a_b")
    assert get_queue("sync").count == 1


def test_worker_command_runs_jobs_in_app_context(app, redis_conn):
    job = enqueue("maintenance", "app.maintenance.scheduler_heartbeat")
    result = app.test_cli_runner().invoke(args=["worker", "maintenance", "--burst", "--simple"])
    assert result.exit_code == 0, result.output
    job.refresh()
    assert job.get_status() == "finished"
    assert float(redis_conn.get(HEARTBEAT_KEY)) == pytest.approx(job.return_value())


def test_failing_job_raises_so_rq_retries_it(app, redis_conn):
    job = enqueue("events", "builtins.int", "not a number", retry=Retry(max=2))
    app.test_cli_runner().invoke(args=["worker", "events", "--burst", "--simple"])
    job.refresh()
    # The first failure and the two retries all ran; then the job lands in the failed registry.
    assert job.get_status() == "failed"
    assert job.retries_left == 0
    assert "ValueError" in job.latest_result().exc_string
    assert get_queue("events").failed_job_registry.count == 1


def test_worker_refuses_unknown_queue(app):
    result = app.test_cli_runner().invoke(args=["worker", "nope", "--burst"])
    assert result.exit_code != 0
    assert "unknown queue(s) nope" in result.output


def test_cron_registers_every_periodic_job_once(app, redis_conn):
    scheduler = build_cron(redis_conn)
    names = [j.name for j in scheduler.get_jobs()]
    assert names == [p.name for p in periodic_jobs()]
    assert len(names) == len(set(names))
    enqueued = scheduler.enqueue_jobs()
    assert {j.name for j in enqueued} == set(names)  # all due at start
    for queue in {p.queue for p in periodic_jobs()}:  # each job landed on the queue its entry names
        expected = sum(1 for p in periodic_jobs() if p.queue == queue)
        assert get_queue(queue).count == expected, queue
        assert all(isinstance(Job.fetch(i, connection=redis_conn), Job) for i in get_queue(queue).job_ids)


def test_work_arriving_during_a_running_job_gets_one_follow_up(app, redis_conn):
    from rq.job import JobStatus

    key = job_key("events-apply", 7)
    first = enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key, follow_up=True)
    assert enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key, follow_up=True).id == first.id
    first.set_status(JobStatus.STARTED)  # the worker took it and may have read its input already
    second = enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key, follow_up=True)
    third = enqueue("sync", "app.maintenance.scheduler_heartbeat", job_id=key, follow_up=True)
    assert second.id == third.id == f"{key}-next"
    assert [j for j in get_queue("sync").job_ids if j.endswith("-next")] == [second.id]  # exactly one follow-up
