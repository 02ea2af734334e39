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
