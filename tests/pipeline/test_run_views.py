import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from pipeline.models import ClipResult, PipelineRun
from pipeline.services import run_progress
from relabel_app.models import Clip, Dataset
from relabel_app.roles import ensure_role_groups

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset():
    ds = Dataset.objects.create(name="tiny-ds")
    for i in range(5):
        Clip.objects.create(dataset=ds, ytid=f"clip{i:07d}", start_s=0, end_s=10, position=i)
    return ds


def user_in(group: str) -> User:
    ensure_role_groups()
    u = User.objects.create_user(group, password="pw-12345-xyz")
    u.groups.add(Group.objects.get(name=group))
    return u


def test_curator_starts_a_run_and_tasks_are_queued_after_commit(
    client, dataset, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    from pipeline import tasks

    monkeypatch.setattr(tasks.stage_task_for("caption"), "delay", lambda run_id, ids: sent.append((run_id, ids)))
    client.force_login(user_in("curator"))
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("pipeline:run_start"),
                           {"dataset": dataset.pk, "profile": "tiny"})
    run = PipelineRun.objects.get()
    assert resp.status_code == 302 and resp.url == reverse("pipeline:run_detail", args=[run.pk])
    assert run.status == PipelineRun.Status.RUNNING and run.clip_count == 5
    assert ClipResult.objects.filter(run=run).count() == 5
    assert [ids for _, ids in sent] == [sorted(dataset.clips.values_list("id", flat=True))]
    # Same form again continues the same run; its clips are queued again, nothing duplicated.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pipeline:run_start"), {"dataset": dataset.pk, "profile": "tiny"})
    assert PipelineRun.objects.count() == 1 and ClipResult.objects.count() == 5


def test_reviewer_cannot_start_or_cancel_runs(client, dataset):
    client.force_login(user_in("reviewer"))
    resp = client.post(reverse("pipeline:run_start"), {"dataset": dataset.pk, "profile": "tiny"})
    assert resp.status_code == 403
    assert not PipelineRun.objects.exists()
    page = client.get(reverse("pipeline:run_list"))
    assert page.status_code == 200 and "Start run" not in page.content.decode()


def test_anonymous_is_sent_to_login(client):
    resp = client.get(reverse("pipeline:run_list"))
    assert resp.status_code == 302 and "/accounts/login/" in resp.url


def test_progress_partial_polls_until_done(client, dataset):
    client.force_login(user_in("curator"))
    run = PipelineRun.objects.create(dataset=dataset, profile_name="tiny",
                                     config={"random_weights": True},
                                     status=PipelineRun.Status.RUNNING)
    for c in dataset.clips.all():
        ClipResult.objects.create(run=run, clip=c)
    ClipResult.objects.filter(run=run, clip__position__lt=2).update(
        caption_status="done", predict_status="done", match_status="done", filter_status="done")
    ClipResult.objects.filter(run=run, clip__position=4).update(error_stage="caption", error="x")
    p = run_progress(run=run)
    assert (p.total, p.filter, p.failed, p.finished) == (5, 2, 1, 3)
    url = reverse("pipeline:run_detail", args=[run.pk])
    resp = client.get(url, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    assert "3 of 5 clips finished" in resp.content.decode()
    page = client.get(url).content.decode()
    assert "random-weight test models" in page and 'hx-trigger="every 1s"' in page
    run.status = PipelineRun.Status.DONE
    run.save()
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 286  # htmx: stop polling


def _run_with_results(dataset, status, **config):
    run = PipelineRun.objects.create(dataset=dataset, profile_name="tiny", status=status,
                                     config={"random_weights": True, **config})
    for c in dataset.clips.all():
        ClipResult.objects.create(run=run, clip=c)
    return run


def _buttons(client, run) -> tuple[bool, bool]:
    page = client.get(reverse("pipeline:run_detail", args=[run.pk])).content.decode()
    poll = client.get(reverse("pipeline:run_detail", args=[run.pk]),
                      HTTP_HX_REQUEST="true").content.decode()
    # The polled partial carries the buttons, so a run that finishes loses "Cancel run".
    assert ("Resume run" in page, "Cancel run" in page) == ("Resume run" in poll,
                                                            "Cancel run" in poll)
    return "Resume run" in page, "Cancel run" in page


@pytest.mark.parametrize("status, resume, cancel", [
    (PipelineRun.Status.PENDING, False, True),
    (PipelineRun.Status.RUNNING, False, True),
    (PipelineRun.Status.CANCELLED, True, False),
    (PipelineRun.Status.DONE, False, False),
])
def test_resume_only_on_a_cancelled_run_and_never_beside_cancel(client, dataset, status,
                                                                 resume, cancel):
    client.force_login(user_in("curator"))
    run = _run_with_results(dataset, status)
    assert _buttons(client, run) == (resume, cancel)


def test_a_run_with_no_result_written_for_a_while_is_interrupted(client, dataset, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from pipeline import services

    client.force_login(user_in("curator"))
    run = _run_with_results(dataset, PipelineRun.Status.RUNNING)
    long_ago = timezone.now() - timedelta(seconds=services.stall_seconds() + 5)
    PipelineRun.objects.filter(pk=run.pk).update(started_at=long_ago, created_at=long_ago)
    ClipResult.objects.filter(run=run).update(updated_at=long_ago)
    assert run_progress(run=run).interrupted
    resume, cancel = _buttons(client, run)
    assert (resume, cancel) == (True, False)
    assert "looks interrupted" in client.get(reverse("pipeline:run_detail", args=[run.pk])).content.decode()
    # One result written a moment ago: moving again, so Cancel and no Resume.
    ClipResult.objects.filter(run=run, clip__position=0).update(updated_at=timezone.now())
    assert _buttons(client, run) == (False, True)
    # Every clip finished long ago but the status was never set: not interrupted either.
    ClipResult.objects.filter(run=run).update(
        updated_at=long_ago, caption_status="done", predict_status="done", match_status="done",
        filter_status="done")
    assert not run_progress(run=run).interrupted


def test_resume_does_nothing_on_a_running_run(client, dataset, monkeypatch,
                                              django_capture_on_commit_callbacks):
    from pipeline import tasks

    sent = []
    monkeypatch.setattr(tasks.stage_task_for("caption"), "delay", lambda *a: sent.append(a))
    client.force_login(user_in("curator"))
    run = _run_with_results(dataset, PipelineRun.Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("pipeline:run_resume", args=[run.pk]), follow=True)
    assert sent == [] and "nothing to resume" in resp.content.decode()
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.CANCELLED)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pipeline:run_resume", args=[run.pk]))
    assert len(sent) == 1
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.RUNNING


def test_run_page_shows_the_profile_as_json_and_the_failed_clips(client, dataset):
    import html
    import json

    client.force_login(user_in("reviewer"))
    run = _run_with_results(dataset, PipelineRun.Status.RUNNING,
                            filter={"threshold": 0.25, "best_of_n": 1}, name="tiny")
    bad = dataset.clips.get(position=3)
    ClipResult.objects.filter(run=run, clip=bad).update(
        caption_status="failed", error_stage="caption",
        error="FileNotFoundError: no local audio file for <b>clip</b>")
    page = client.get(reverse("pipeline:run_detail", args=[run.pk])).content.decode()
    pre = page.split('<pre class="config">')[1].split("</pre>")[0]
    assert json.loads(html.unescape(pre)) == run.config
    assert '\n  "filter": {\n    "best_of_n": 1,' in html.unescape(pre)
    assert "True" not in pre and "'" not in html.unescape(pre)  # not a Python dict
    section = page.split('id="failed-clips"')[1].split("</section>")[0]
    assert "Failed clips (1)" in section
    assert f'<a href="{reverse("review:clip", args=[bad.pk])}">{bad.ytid}</a>' in section
    assert "<td>caption</td>" in section
    assert "no local audio file for &lt;b&gt;clip&lt;/b&gt;" in section
    assert "<b>clip</b>" not in page


def test_a_run_whose_workers_are_gone_is_requeued_once_then_stopped(
    client, dataset, monkeypatch, django_capture_on_commit_callbacks
):
    """Issue 12 (jobs): the clip results are the run's heartbeat. A worker that starts (or
    `manage.py recover_runs`) re-queues an interrupted run once; interrupted again, the
    run is stopped with the reason, and a person's Resume starts over."""
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from pipeline import services, tasks

    sent = []
    monkeypatch.setattr(tasks.stage_task_for("caption"), "delay", lambda *a: sent.append(a))
    run = _run_with_results(dataset, PipelineRun.Status.RUNNING, chunk_size=2)
    fresh = _run_with_results(dataset, PipelineRun.Status.RUNNING)  # moving: left alone
    long_ago = timezone.now() - timedelta(seconds=services.stall_seconds() + 5)
    PipelineRun.objects.filter(pk=run.pk).update(started_at=long_ago, created_at=long_ago)
    PipelineRun.objects.filter(pk=fresh.pk).update(started_at=timezone.now())
    ClipResult.objects.filter(run=run).update(updated_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        tasks._recover_interrupted_runs()  # what a starting worker does
    run.refresh_from_db()
    assert run.recoveries == 1 and run.status == PipelineRun.Status.RUNNING
    assert sorted(a[1][0] for a in sent) == sorted(  # 5 clips in chunks of 2, at caption
        ClipResult.objects.filter(run=run).values_list("clip_id", flat=True))[::2]
    assert len(sent) == 3 and {a[0] for a in sent} == {run.pk}
    assert "Re-queued automatically (1x)" in run.stop_reason
    assert not run_progress(run=run).interrupted  # the stall clock starts again
    assert services.runs_recover_interrupted() == {"requeued": [], "stopped": []}

    # Still no result long after the re-queue: stopped, with the reason, and Resume offered.
    PipelineRun.objects.filter(pk=run.pk).update(requeued_at=long_ago)
    out = StringIO()
    call_command("recover_runs", stdout=out)
    assert out.getvalue().strip() == f"re-queued: none; stopped: {run.pk}"
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.CANCELLED and len(sent) == 3
    assert "interrupted again after 1 automatic re-queue" in run.stop_reason
    client.force_login(user_in("curator"))
    page = client.get(reverse("pipeline:run_detail", args=[run.pk])).content.decode()
    assert "interrupted again" in page and "Resume run" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pipeline:run_resume", args=[run.pk]))
    run.refresh_from_db()
    assert (run.status, run.recoveries, run.stop_reason) == (PipelineRun.Status.RUNNING, 0, "")
    assert len(sent) == 6
    fresh.refresh_from_db()
    assert fresh.recoveries == 0 and fresh.status == PipelineRun.Status.RUNNING


SERVER_DETAILS = ("/srv/models/qwen2-audio", "http://10.0.0.5:8000/v1", "/var/cache/relabel",
                  "/srv/audio/balanced/clip0000000.wav", "gpu-node-7.internal:6379")


def test_run_page_hides_server_paths_and_base_urls_from_reviewers(client, dataset):
    """Issue 16: a reviewer read the model folders, cache paths and model servers' base URLs
    of a run (its resolved profile, its error texts, its stop reason)."""
    config = {
        "backends": {
            "audio_chat": {"adapter": "openai-compatible", "model": "Qwen/Qwen2-Audio-7B",
                           "base_url": "http://10.0.0.5:8000/v1"},
            "clap": {"adapter": "transformers-clap", "model": "/srv/models/qwen2-audio"},
            "cache_dir": "/var/cache/relabel",
        },
        "filter": {"threshold": 0.25, "labels": ["/m/09x0r"]},
        "caption": {"round1_prompt": "Describe the sounds in this audio clip."},
    }
    run = PipelineRun.objects.create(
        dataset=dataset, profile_name="api", status=PipelineRun.Status.CANCELLED, config=config,
        clip_count=5, stop_reason="worker on redis://gpu-node-7.internal:6379/0 is gone")
    clip = dataset.clips.first()
    ClipResult.objects.create(
        run=run, clip=clip, error_stage="caption",
        error="FileNotFoundError: /srv/audio/balanced/clip0000000.wav (see http://10.0.0.5:8000/v1)")
    url = reverse("pipeline:run_detail", args=[run.pk])
    client.force_login(user_in("reviewer"))
    page = client.get(url).content.decode()
    for detail in SERVER_DETAILS:
        assert detail not in page, detail
    for kept in ("Qwen/Qwen2-Audio-7B", "transformers-clap", "/m/09x0r", "0.25",
                 "Describe the sounds in this audio clip.", "FileNotFoundError", "(hidden)"):
        assert kept in page, kept
    client.force_login(user_in("curator"))
    page = client.get(url).content.decode()
    for detail in SERVER_DETAILS:
        assert detail in page, detail
