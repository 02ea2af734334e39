"""The database (and, with Redis, the broker) drop the worker's connections mid-run: the
run retries and completes, nothing half-written."""

import contextlib
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from pipeline.models import Candidate, ClipResult, PipelineRun
from pipeline.services import run_dispatch, run_get_or_create, run_progress, run_wait

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def kill_other_db_connections(stop: threading.Event, killed: list[int]) -> None:
    """Terminate every other backend on the test database, every 100 ms, until stopped."""
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' AND pid <> %s",
                [main_pid],
            ).fetchall()
            killed.append(sum(1 for (ok,) in rows if ok))
            time.sleep(0.1)


main_pid = 0


def kill_redis_clients(stop: threading.Event) -> None:
    import redis

    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    me = r.client_id()
    while not stop.is_set():
        for c in r.client_list():
            if int(c["id"]) != me:
                with contextlib.suppress(redis.RedisError):
                    r.client_kill_filter(_id=int(c["id"]))
        time.sleep(0.3)


def test_run_survives_database_and_broker_outages(demo_dataset, tiny_models, worker):
    global main_pid
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        main_pid = cur.fetchone()[0]
    run, _ = run_get_or_create(dataset=demo_dataset, profile="tiny")
    run_dispatch(run=run)
    proc = worker()
    deadline = time.monotonic() + 120
    while run_progress(run=run).caption < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stop, killed = threading.Event(), []
    threads = [threading.Thread(target=kill_other_db_connections, args=(stop, killed))]
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        threads.append(threading.Thread(target=kill_redis_clients, args=(stop,)))
    for t in threads:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join()
    assert sum(killed) >= 1, "the outage must actually cut the worker's connections"
    connection.close()  # ours may have been cut too; reconnect
    done = run_wait(run=run, timeout_s=120, poll_s=0.3)
    assert proc.poll() is None, "the worker must ride out the outage, not die"
    # Completes by itself: chunks cut short retry, nothing needs re-queueing by hand.
    assert done.finished == 16, done
    assert ClipResult.objects.filter(run=run).count() == 16
    for r in ClipResult.objects.filter(run=run):
        # No half-written clip: a failed clip failed for its own reason, not the outage.
        assert r.error_stage in ("", "predict"), r.error
    dupes = (Candidate.objects.filter(run=run).values("clip", "label", "attempt")
             .annotate(n=Count("id")).filter(n__gt=1))
    assert not dupes.exists()
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE
