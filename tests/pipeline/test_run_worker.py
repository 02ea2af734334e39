"""The tiny profile through a real Celery worker subprocess, the real broker (Redis in CI,
the filesystem transport locally) and PostgreSQL."""

import contextlib
import time

import pytest
from django.core.management import call_command

from pipeline.models import Candidate, ClipResult, PipelineRun, StageStatus
from pipeline.services import run_dispatch, run_get_or_create, run_wait
from relabel_app.models import Clip, Label

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until_idle(timeout: float = 60.0) -> None:
    """Until no queue holds a message and the worker runs no task, seen twice in a row: what
    "nothing changed" is checked after (a fixed sleep says nothing about a slower write)."""
    from kombu.exceptions import ChannelError

    from pipeline.worker import all_queues, broker_is_local
    from relabel_app.celery import app

    deadline, quiet = time.monotonic() + timeout, 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the worker did not go idle"
        waiting = 0
        with app.connection_for_read() as conn:
            for q in all_queues():
                # A queue never declared (ChannelError) was never sent anything.
                with contextlib.suppress(ChannelError):
                    waiting += conn.default_channel.queue_declare(q, passive=True).message_count
        busy = False
        if not broker_is_local():  # the filesystem transport has no broadcast
            busy = any((app.control.inspect(timeout=1).active() or {}).values())
        quiet = 0 if waiting or busy else quiet + 1
        time.sleep(0.2)


def snapshot(run):
    results = {
        r.clip_id: (r.caption_status, r.predict_status, r.match_status, r.filter_status, r.updated_at)
        for r in ClipResult.objects.filter(run=run)
    }
    cands = sorted(Candidate.objects.filter(run=run).values_list("id", "clip_id", "label_id",
                                                                  "clap_score", "kept"))
    return results, cands


def test_tiny_profile_runs_every_stage_for_every_clip(demo_dataset, tiny_models, worker):
    run, created = run_get_or_create(dataset=demo_dataset, profile="tiny")
    assert created and run.clip_count == 16
    assert run.config["random_weights"] is True
    assert run.config["caption"]["round1_prompt"].startswith("Describe the sounds")
    assert run.config["model_fingerprints"]["clap"].startswith("local-")
    run_dispatch(run=run)
    proc = worker()
    progress = run_wait(run=run, timeout_s=240, poll_s=0.5)
    assert proc.poll() is None, "worker died"
    assert progress.total == 16
    assert progress.filter + progress.failed == 16
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE and run.finished_at is not None

    for r in ClipResult.objects.filter(run=run):
        assert r.caption_status == StageStatus.DONE
        assert len(r.caption["attempts"]) >= 1 and r.summary
        if r.error_stage:
            # Random weights may say nothing parseable: a recorded failure, not a crash.
            assert (r.error_stage, r.error) == ("predict", "answer parsed to no labels")
            continue
        assert (r.predict_status, r.match_status, r.filter_status) == (StageStatus.DONE,) * 3
        assert r.predict["attempts"][0]["raw_answers"]
        assert set(r.timings) == {"caption", "predict", "match", "filter"}
    assert progress.filter >= 8
    cands = Candidate.objects.filter(run=run)
    trainable = set(Label.objects.filter(index__isnull=False).values_list("id", flat=True))
    assert all(c.label_id in trainable for c in cands)
    assert all(c.clap_score is not None and -1.0 <= c.clap_score <= 1.0 for c in cands)
    assert all(c.kept == (c.clap_score >= run.config["filter"]["threshold"]) for c in cands)
    # The demo shows the product (issue 20, item 9): the tiny profile's threshold sits among
    # its own scores on the demo, so the run keeps some candidates and filters others,
    # while the run still says its models are random.
    selected = [c for c in cands if c.selected]
    assert 0 < sum(c.kept for c in selected) < len(selected)
    assert run.random_weights

    # The same command again: continues the same run and changes nothing.
    before = snapshot(run)
    call_command("run_pipeline", "--dataset", "demo", "--profile", "tiny", "--wait", "--no-worker",
                 "--timeout", "30")
    assert PipelineRun.objects.filter(dataset=demo_dataset).count() == 1
    wait_until_idle()
    assert snapshot(run) == before


def test_clip_without_audio_fails_alone_and_the_run_goes_on(demo_dataset, tiny_models, worker):
    broken = Clip.objects.filter(dataset=demo_dataset).order_by("position").first()
    Clip.objects.filter(pk=broken.pk).update(audio_path="", audio_status=Clip.AudioStatus.MISSING)
    run, _ = run_get_or_create(dataset=demo_dataset, profile="tiny",
                               clip_ids=list(Clip.objects.filter(dataset=demo_dataset)
                                             .order_by("position").values_list("id", flat=True)[:3]))
    run_dispatch(run=run)
    worker()
    progress = run_wait(run=run, timeout_s=180, poll_s=0.5)
    assert (progress.total, progress.filter, progress.failed) == (3, 2, 1)
    failed = ClipResult.objects.get(run=run, clip=broken)
    assert failed.error_stage == "caption"
    assert "no local audio file" in failed.error
    assert not Candidate.objects.filter(run=run, clip=broken).exists()
