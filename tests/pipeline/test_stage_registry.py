"""The chain is one ordered registry of stage objects (pipeline.chain): tasks, routing, the
next stage, dispatch, progress, status columns and bulk INSERTs all derive from it. A fifth
stage (tests/pipeline/toy_stage.py) is plugged into a run and done by a real worker."""

import importlib
import io
import os
import signal
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from pipeline import chain, tasks
from pipeline.models import ClipResult, PipelineRun, StageStatus, stage_status_field
from pipeline.services import run_dispatch, run_get_or_create, run_progress, run_wait
from pipeline.worker import all_queues, start_worker
from relabel_app.celery import app
from tests.factories import ClipFactory

TOY = "tests.pipeline.toy_stage"


def test_the_registry_orders_the_four_stages_and_derives_their_parts():
    assert chain.names() == ["caption", "predict", "match", "filter"]
    assert [chain.following(n) for n in chain.names()] == ["predict", "match", "filter", None]
    assert [chain.previous(n) for n in chain.names()] == [None, "caption", "predict", "match"]
    assert chain.queues() == ["audio", "llm", "clap"]
    # One status column per stage, 'pending' in the database too.
    for name in chain.names():
        field = ClipResult._meta.get_field(f"{name}_status")
        assert field.db_default == StageStatus.PENDING
    # One task per stage, routed to the stage's queue by the project's router.
    for stage in chain.stages():
        task = tasks.stage_task_for(stage.name)
        assert task.name == f"pipeline.{stage.name}"
        route = app.amqp.router.route({}, task.name, task_type=app.tasks[task.name])
        assert route["queue"].name == stage.queue
    assert all_queues() == ["celery", "audio", "llm", "clap", "export", "index"]


def test_a_stage_must_have_a_short_name_and_a_queue():
    class NoQueue(chain.Stage):
        name = "noqueue"

    class LongName(chain.Stage):
        name, queue = "much_too_long", "llm"

    with pytest.raises(ValueError, match="names no queue"):
        chain.register(NoQueue)
    with pytest.raises(ValueError, match="1 to 8 characters"):
        chain.register(LongName)
    with pytest.raises(ValueError, match="registered already"):
        chain.register(chain.get("match"))
    assert chain.names() == ["caption", "predict", "match", "filter"]


@pytest.mark.django_db
def test_bulk_inserted_rows_take_every_other_column_from_database_defaults():
    clip = ClipFactory()
    run, _ = run_get_or_create(dataset=clip.dataset, profile="tiny")
    row = ClipResult.objects.get(run=run, clip=clip)  # written by a raw INSERT (run_id, clip_id)
    assert [getattr(row, f) for f in chain.status_fields()] == [StageStatus.PENDING] * 4
    assert (row.caption, row.summary, row.predict, row.free_labels, row.best_attempt,
            row.error_stage, row.error, row.timings) == ({}, "", {}, [], 0, "", "", {})
    assert row.updated_at is not None


@pytest.fixture
def toy_plugged(db):
    """The toy stage in this process, with the column its migration would add."""
    sys.modules.pop(TOY, None)
    toy = importlib.import_module(TOY).ToyStage
    new_field = stage_status_field()
    ClipResult.add_to_class(toy.status_field(), new_field)
    with connection.schema_editor() as editor:
        editor.add_field(ClipResult, new_field)
    yield toy
    with connection.schema_editor() as editor:
        editor.remove_field(ClipResult, new_field)
    ClipResult._meta.local_fields.remove(new_field)
    ClipResult._meta._expire_cache()
    delattr(ClipResult, toy.status_field())
    chain.unregister(toy.name)
    tasks._TASKS.pop(toy.name, None)
    app.tasks.pop(f"pipeline.{toy.name}", None)
    sys.modules.pop(TOY, None)


@pytest.mark.django_db
def test_a_new_stage_needs_only_its_module_and_one_migration(toy_plugged):
    assert chain.names() == ["caption", "predict", "match", "filter", "toy"]
    assert chain.following("filter") == "toy" and chain.last() == "toy"
    assert "toy" in all_queues()
    out = io.StringIO()
    call_command("makemigrations", "pipeline", "--dry-run", stdout=out)
    changes = [line.strip() for line in out.getvalue().splitlines() if line.strip()[:1] in "+~-"]
    assert changes == ["+ Add field toy_status to clipresult"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_fifth_stage_runs_in_a_real_worker(toy_plugged, demo_dataset, tiny_models, tmp_path):
    """Clip A has done the four stages: dispatch sends it to the toy stage. Clip B still
    owes the CLAP filter: after it, the chain hands it on to the toy stage by itself."""
    clips = list(demo_dataset.clips.order_by("position")[:2])
    run, _ = run_get_or_create(dataset=demo_dataset, profile="tiny",
                               clip_ids=[c.pk for c in clips])
    a, b = (ClipResult.objects.get(run=run, clip=c) for c in clips)
    done = StageStatus.DONE
    ClipResult.objects.filter(pk=a.pk).update(
        caption_status=done, predict_status=done, match_status=done, filter_status=done,
        summary="a dog barks twice")
    ClipResult.objects.filter(pk=b.pk).update(
        caption_status=done, predict_status=done, match_status=done,
        summary="rain on a tin roof", free_labels=[["rain"]])
    p = run_progress(run=run)
    assert (p.total, p.filter, p.toy, p.finished) == (2, 1, 0, 0)
    assert run_dispatch(run=run) == 2  # one chunk for the toy stage, one for the filter

    proc = start_worker(log_file=tmp_path / "worker.log", extra_env={
        "RELABEL_DATABASE_NAME": connection.settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "relabel_app.settings.test",
        "RELABEL_EXTRA_STAGES": TOY,
    })
    try:
        p = run_wait(run=run, timeout_s=180, poll_s=0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert (p.total, p.stages, p.failed) == (
        2, {"caption": 2, "predict": 2, "match": 2, "filter": 2, "toy": 2}, 0), \
        (tmp_path / "worker.log").read_text()[-3000:]
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.summary == "a dog barks twice [4 words]"
    assert b.summary == "rain on a tin roof [5 words]"
    assert set(b.timings) == {"filter", "toy"} and a.timings["toy"]["wall_s"] >= 0
