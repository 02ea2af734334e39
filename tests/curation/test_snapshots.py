"""Audit snapshots (the audit page reads stored figures), the audit command's run choice,
and the charts' axes."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.audits import dataset_audit
from curation.models import AuditSnapshot
from curation.snapshots import (
    audit_snapshot_compute,
    audit_snapshot_request,
    decisions_since,
)
from tests.factories import UserFactory

from .conftest import add_candidates, decide, make_clip, make_run

pytestmark = pytest.mark.django_db


def _grow(name: str, n_clips: int, reviewers):
    """A dataset of n clips, a run, and a decision per clip per reviewer."""
    from relabel_app.models import Dataset

    ds = Dataset.objects.create(name=name)
    run = make_run(ds, threshold=0.3)
    for i in range(n_clips):
        c = make_clip(ds, f"{name[:4]}{i:07d}", 0.0, i, ["dog", "speech"][: 1 + i % 2])
        add_candidates(run, c, {"bark": 0.1 * (i % 9), "dog": 0.5})
        for j, r in enumerate(reviewers):
            decide(c, "dog", r, "accept" if (i + j) % 3 else "reject")
    return ds, run


def _page_queries(client, ds, run) -> tuple[int, str]:
    snap = audit_snapshot_request(dataset=ds, run=run)
    audit_snapshot_compute(snapshot_id=snap.pk)
    url = f"/curation/dataset/{ds.name}/audit/?run={run.pk}"
    client.get(url)  # warm caches (session, content types)
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200
    return len(ctx.captured_queries), r.content.decode()


def test_snapshot_page_query_count_is_constant(client):
    reviewers = [UserFactory(username=f"snap-r{i}") for i in range(3)]
    client.force_login(UserFactory(username="snap-cur", role="curator"))
    small = _page_queries(client, *_grow("snapsmall", 2, reviewers[:1]))
    big = _page_queries(client, *_grow("snapbig", 40, reviewers))
    assert small[0] == big[0], (small[0], big[0])
    assert small[0] <= 12
    assert "Computed at" in big[1] and "(0 decisions since" in big[1]
    assert "40 clips" in big[1]


def test_decisions_since_and_debounced_refresh(client):
    r1 = UserFactory(username="since-r1")
    ds, run = _grow("since", 3, [r1])
    snap = audit_snapshot_request(dataset=ds, run=run)
    assert snap.status == "pending"
    snap = audit_snapshot_compute(snapshot_id=snap.pk)
    assert snap.status == "done" and snap.figures["clips"] == 3
    assert decisions_since(snapshot=snap) == 0
    from review.decisions import decision_record

    from .conftest import label

    c = ds.clips.order_by("position").first()
    decision_record(clip=c, label=label("speech"), reviewer=r1, verdict="accept")
    decision_record(clip=c, label=label("speech"), reviewer=r1, verdict="reject")
    assert decisions_since(snapshot=snap) == 2
    client.force_login(UserFactory(username="since-cur", role="curator"))
    html = client.get(f"/curation/dataset/since/audit/?run={run.pk}").content.decode()
    assert "(2 decisions since" in html
    assert "refreshing" not in html  # younger than the debounce: no refresh yet
    AuditSnapshot.objects.filter(pk=snap.pk).update(
        computed_at=snap.computed_at - timedelta(minutes=5))
    html = client.get(f"/curation/dataset/since/audit/?run={run.pk}").content.decode()
    assert "refreshing" in html
    assert AuditSnapshot.objects.get(pk=snap.pk).status == "pending"


def test_refresh_button_requests_a_computation(client):
    ds, run = _grow("refr", 2, [UserFactory(username="refr-r")])
    client.force_login(UserFactory(username="refr-cur", role="curator"))
    r = client.post("/curation/dataset/refr/audit/refresh/", {"run": str(run.pk)})
    assert r.status_code == 302 and r["Location"] == f"/curation/dataset/refr/audit/?run={run.pk}"
    snap = AuditSnapshot.objects.get(dataset=ds, run=run)
    assert snap.status == "pending" and snap.requested_at is not None
    # ?run=none audits without a run: a snapshot of its own.
    client.post("/curation/dataset/refr/audit/refresh/", {"run": "none"})
    assert AuditSnapshot.objects.filter(dataset=ds, run=None).exists()
    html = client.get("/curation/dataset/refr/audit/?run=none").content.decode()
    assert "Being computed" in html


def test_a_finished_label_set_import_asks_for_a_snapshot(tmp_path, django_capture_on_commit_callbacks):
    from pipeline.external_import import labelset_import
    from relabel_app.models import Dataset

    ds = Dataset.objects.create(name="imp")
    make_clip(ds, "impimpimp01", 0.0, 0, ["dog"])
    p = tmp_path / "set.json"
    p.write_text(json.dumps({"data": [{"wav": "impimpimp01.wav", "labels": "/m/09x0r"}]}))
    with django_capture_on_commit_callbacks(execute=True):
        r = labelset_import(path=p, dataset_name="imp", name="published")
    snap = AuditSnapshot.objects.get(dataset=ds)
    assert snap.run_id == r.run_id and snap.status in ("pending", "running", "done")


def test_audit_command_run_choice(capsys):
    from relabel_app.models import Dataset

    ds = Dataset.objects.create(name="cmd")
    c = make_clip(ds, "cmdcmdcmd01", 0.0, 0, ["dog"])
    make_clip(ds, "cmdcmdcmd02", 0.0, 1, ["dog"])
    run = make_run(ds, threshold=0.3)
    add_candidates(run, c, {"dog": 0.9})
    ext = make_run(ds, threshold=0.0, kind="external")
    add_candidates(ext, c, {"dog": 1.0}, result=False)
    out = io.StringIO()
    call_command("audit", "--dataset", "cmd", "--json", stdout=out)
    f = json.loads(out.getvalue())
    assert (f["run"]["id"], f["run_choice"]) == (ext.pk, "latest")
    assert f["coverage"] == {"covered_clips": 1, "uncovered_clips": 1}
    assert f"using the latest run of cmd, #{ext.pk} tiny (external)" in capsys.readouterr().err
    out = io.StringIO()
    call_command("audit", "--dataset", "cmd", "--run", "none", "--json", stdout=out)
    f = json.loads(out.getvalue())
    assert f["run"] is None and f["run_choice"] == "none" and f["coverage"] is None
    out = io.StringIO()
    call_command("audit", "--dataset", "cmd", "--run", str(run.pk), stdout=out)
    assert "clips the run does not cover: 1 of 2" in out.getvalue()


def test_mean_clap_of_original_labels_kept_and_rejected():
    """Originals: a0 dog (score 0.8) accepted 1-0; a1 dog (0.2) rejected 0-1; a2 dog (0.5)
    undecided; a3 speech has no score. Means 0.8, 0.2, 0.5."""
    from pipeline.models import OriginalLabelScore
    from relabel_app.models import Dataset

    from .conftest import label

    r = UserFactory(username="olsr")
    ds = Dataset.objects.create(name="ols")
    clips = [make_clip(ds, f"olsolsols0{i}", 0.0, i, ["speech" if i == 3 else "dog"])
             for i in range(4)]
    run = make_run(ds, threshold=0.3)
    for c, s in zip(clips[:3], (0.8, 0.2, 0.5), strict=False):
        OriginalLabelScore.objects.create(run=run, clip=c, label=label("dog"), clap_score=s)
    decide(clips[0], "dog", r, "accept")
    decide(clips[1], "dog", r, "reject")
    f = dataset_audit(dataset=ds, run=run)
    assert f["original_label_scores"] == {
        "kept": {"labels": 1, "mean_clap": pytest.approx(0.8)},
        "rejected": {"labels": 1, "mean_clap": pytest.approx(0.2)},
        "unresolved": {"labels": 1, "mean_clap": pytest.approx(0.5)},
    }


# --- charts -------------------------------------------------------------------------------


def test_tick_labels_are_distinct_and_have_separators():
    from curation.charts import _nice_max, tick_labels

    assert tick_labels([0.05, 0.052, 0.054, 0.056], min_decimals=2) == [
        "0.050", "0.052", "0.054", "0.056"]
    assert tick_labels([0, 2500, 5000, 7500, 10000]) == ["0", "2,500", "5,000", "7,500",
                                                          "10,000"]
    assert tick_labels([0, 12.5, 25, 37.5, 50]) == ["0.0", "12.5", "25.0", "37.5", "50.0"]
    assert (_nice_max(42), _nice_max(7.3), _nice_max(0.31), _nice_max(100)) == (50, 10, 0.5,
                                                                                   100)


def _texts(svg: str) -> list[str]:
    return re.findall(r">([^<>]+)</text>", svg)


def test_histogram_runs_to_twenty_then_21_plus_and_scales_to_the_data():
    from curation.dashboard import audit_charts

    block = {"clips": 1000, "labels": 0, "average": 1.0,
             "histogram": {"1": 400, "2": 300, "20": 200, "25": 100}}
    figures = {"label_counts": {"original": block, "run": None, "curated": block},
               "error_categories": {"per_category": [], "per_branch": []},
               "throughput": []}
    svg = str(audit_charts(figures)["labels_histogram"])
    texts = _texts(svg)
    assert "20" in texts and "21+" in texts and "10+" not in texts
    # 40 % is the largest bar: the axis ends at 50, not 100.
    assert "50.0" in texts and "37.5" in texts and not any(t.startswith("100") for t in texts)
    assert "Original labels, 21+: 10</title>" in svg  # 100 of 1,000 clips have 25 labels


def test_pr_curve_starts_at_the_first_real_point():
    from curation.dashboard import audit_charts

    pts = [{"threshold": 0.9, "precision": 0.0, "recall": 0.0, "f1": 0.0, "kept": 1},
           {"threshold": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "kept": 2},
           {"threshold": 0.2, "precision": 0.5, "recall": 1.0, "f1": 0.667, "kept": 4}]
    figures = {
        "label_counts": {"original": None, "run": None, "curated": None},
        "error_categories": {"per_category": [], "per_branch": []}, "throughput": [],
        "pipeline_vs_experts": {"pr_curve": {
            "points": pts, "best": pts[2], "run_threshold": 0.3}},
    }
    svg = str(audit_charts(figures)["pr_curve"])
    [points] = re.findall(r'<polyline points="([^"]+)"', svg)
    assert len(points.split()) == 2  # the (recall 0, precision 0) point is left out


def test_figures_render_once_per_snapshot(client, monkeypatch):
    """The figure block is cached per snapshot: a second load draws no chart; a new
    computation (a new computed_at) renders again."""
    ds, run = _grow("once", 3, [UserFactory(username="once-r")])
    client.force_login(UserFactory(username="once-cur", role="curator"))
    snap = audit_snapshot_compute(snapshot_id=audit_snapshot_request(dataset=ds, run=run).pk)
    url = f"/curation/dataset/once/audit/?run={run.pk}"
    assert "Labels per clip (% of clips)" in client.get(url).content.decode()

    def boom(figures):
        raise AssertionError("charts drawn again")

    monkeypatch.setattr("curation.dashboard.audit_charts", boom)
    assert "Labels per clip (% of clips)" in client.get(url).content.decode()
    AuditSnapshot.objects.filter(pk=snap.pk).update(status="pending")
    audit_snapshot_compute(snapshot_id=snap.pk)
    with pytest.raises(AssertionError, match="charts drawn again"):
        client.get(url)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_refresh_is_computed_by_a_real_worker(client, worker):
    """The Refresh button queues curation.audit_snapshot after commit; a real Celery worker
    (real broker) computes it and the page shows the figures."""
    import time

    ds, run = _grow("wrk", 3, [UserFactory(username="wrk-r")])
    client.force_login(UserFactory(username="wrk-cur", role="curator"))
    proc = worker()
    r = client.post("/curation/dataset/wrk/audit/refresh/", {"run": str(run.pk)})
    assert r.status_code == 302
    deadline = time.monotonic() + 90
    snap = AuditSnapshot.objects.get(dataset=ds, run=run)
    while snap.status != "done" and time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited"
        time.sleep(0.5)
        snap.refresh_from_db()
    assert snap.status == "done", snap.error
    assert snap.figures["clips"] == 3 and snap.figures["run"]["id"] == run.pk
    html = client.get(f"/curation/dataset/wrk/audit/?run={run.pk}").content.decode()
    assert "Computed at" in html and "3 clips" in html
