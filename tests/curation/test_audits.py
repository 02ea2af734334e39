"""Every audit figure on ``audit_set`` (conftest.py), against values worked out by hand.

The resolved states the figures rest on (accept-reject votes; "unsure" does not vote):
  a0 speech 2-0 accepted   a0 dog 0-2 rejected   a0 bark 1-0 accepted   a0 music 0-2 rejected
  a1 music 1-1, adjudicated accept               a1 speech 0-1 rejected
  a2 siren 0-2 rejected    a2 dog 2-0 accepted   a2 speech 1-0 accepted
  a2 choir (added by r3) 1-0 accepted            a3 dog 1-0 accepted
Kept candidates (threshold 0.3): a0 speech .9, bark .5; a1 music .8, speech .95;
a2 siren .4, dog .35. Filtered: a0 music .2. a0 cat .99 is not the selected attempt.
The run covers a0, a1, a2 (ClipResult rows); a3 is not covered.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from curation.audits import audit_base_tallies, dataset_audit, dataset_audit_increment

from .conftest import MIDS

approx = pytest.approx


@pytest.fixture(params=["full", "increment"])
def figures(request, audit_set):
    """Every hand-worked figure twice: computed over every clip, and as the audit snapshot
    computes it (the base as if nobody had decided, plus the decided clips' difference)."""
    if request.param == "full":
        return dataset_audit(dataset=audit_set.dataset)
    base = audit_base_tallies(dataset=audit_set.dataset, run=audit_set.run)
    return dataset_audit_increment(dataset=audit_set.dataset, run=audit_set.run, base=base,
                                   run_choice="latest")


def test_default_run_and_header(audit_set, figures):
    assert figures["dataset"] == "aud" and figures["clips"] == 4
    assert figures["run"]["id"] == audit_set.run.pk  # the latest model-chain run
    assert figures["run"]["threshold"] == 0.3 and figures["policy"] == "keep-original"


def test_label_counts(figures):
    lc = figures["label_counts"]
    # Originals: a0 2, a1 1, a2 2, a3 1.
    assert lc["original"] == {"clips": 4, "labels": 6, "average": approx(1.5),
                              "histogram": {"1": 2, "2": 2}}
    # Kept candidates on the 3 covered clips: 2 each.
    assert lc["run"] == {"clips": 3, "labels": 6, "average": approx(2.0),
                         "histogram": {"2": 3}}
    # Curated: a0 speech+bark, a1 music, a2 dog+speech+choir, a3 dog.
    assert lc["curated"] == {"clips": 4, "labels": 7, "average": approx(1.75),
                             "histogram": {"1": 2, "2": 1, "3": 1}}


def test_agreement_between_originals_and_run(figures):
    a = figures["agreement"]
    # Covered originals: a0 speech, dog; a1 music; a2 speech, siren = 5.
    # Kept: a0 speech, bark; a1 music, speech; a2 siren, dog = 6. Both: a0 speech, a1 music,
    # a2 siren = 3.
    assert (a["clips"], a["original_labels"], a["run_labels"], a["both"]) == (3, 5, 6, 3)
    assert a["original_kept_fraction"] == approx(3 / 5)
    assert a["run_original_fraction"] == approx(3 / 6)
    per = {c["mid"]: c for c in a["per_class"]}
    assert set(per) == {MIDS[k] for k in ("speech", "dog", "music", "siren", "bark")}
    s = per[MIDS["speech"]]
    assert (s["original"], s["run"], s["both"]) == (2, 2, 1)
    assert s["original_kept_fraction"] == approx(0.5) and s["run_original_fraction"] == approx(0.5)
    d = per[MIDS["dog"]]
    assert (d["original"], d["run"], d["both"]) == (1, 1, 0)
    assert d["original_kept_fraction"] == 0 and d["run_original_fraction"] == 0
    b = per[MIDS["bark"]]
    assert (b["original"], b["run"], b["both"]) == (0, 1, 0)
    assert b["original_kept_fraction"] is None and b["run_original_fraction"] == 0
    for key in ("music", "siren"):
        c = per[MIDS[key]]
        assert (c["original"], c["run"], c["both"]) == (1, 1, 1)
        assert c["original_kept_fraction"] == 1 and c["run_original_fraction"] == 1


def test_error_categories(figures):
    e = figures["error_categories"]
    counts = {c["slug"]: c["count"] for c in e["per_category"]}
    assert e["decisions_with_category"] == 6
    assert {k: counts[k] for k in ("t-orig-wrong", "t-cand-wrong", "t-env-confusion",
                                   "t-ambiguous", "t-orig-missing")} == {
        "t-orig-wrong": 2, "t-cand-wrong": 1, "t-env-confusion": 1, "t-ambiguous": 1,
        "t-orig-missing": 1}
    assert sum(counts.values()) == 6
    branches = {b["name"]: b for b in e["per_branch"]}
    assert list(branches) == [
        "Human sounds", "Animal", "Music", "Natural sounds", "Sounds of things",
        "Source-ambiguous sounds", "Channel, environment and background"]
    # Choir sits under Human sounds and Music: its decision counts in both.
    assert {n: b["count"] for n, b in branches.items()} == {
        "Human sounds": 2, "Animal": 2, "Music": 2, "Natural sounds": 0,
        "Sounds of things": 1, "Source-ambiguous sounds": 0,
        "Channel, environment and background": 0}
    assert branches["Human sounds"]["by_category"] == {"t-cand-wrong": 1, "t-orig-missing": 1}
    assert branches["Animal"]["by_category"] == {"t-orig-wrong": 2}
    assert branches["Music"]["by_category"] == {"t-ambiguous": 1, "t-orig-missing": 1}
    assert branches["Sounds of things"]["by_category"] == {"t-env-confusion": 1}


def test_pipeline_vs_experts_precision_recall(figures):
    p = figures["pipeline_vs_experts"]
    # TP: a0 speech, a0 bark, a1 music, a2 dog. FP: a1 speech (.95), a2 siren (.4).
    # FN: a2 speech and a2 choir (accepted, never proposed). a3 is not covered.
    assert p["overall"] == {"tp": 4, "fp": 2, "fn": 2, "precision": approx(4 / 6),
                            "recall": approx(4 / 6)}
    per = {c["mid"]: c for c in p["per_class"]}
    assert (per[MIDS["speech"]]["tp"], per[MIDS["speech"]]["fp"], per[MIDS["speech"]]["fn"]) \
        == (1, 1, 1)
    assert per[MIDS["speech"]]["precision"] == approx(0.5)
    assert per[MIDS["speech"]]["recall"] == approx(0.5)
    assert per[MIDS["siren"]]["precision"] == 0 and per[MIDS["siren"]]["recall"] is None
    assert per[MIDS["choir"]]["precision"] is None and per[MIDS["choir"]]["recall"] == 0
    for key in ("bark", "music", "dog"):
        assert (per[MIDS[key]]["precision"], per[MIDS[key]]["recall"]) == (1, 1)


def test_clap_threshold_curve(figures):
    pr = figures["pipeline_vs_experts"]["pr_curve"]
    # Decided candidates by score: .95 R, .9 A, .8 A, .5 A, .4 R, .35 A, .2 R (4 accepted).
    assert (pr["decided_candidates"], pr["positives"], pr["thresholds"]) == (7, 4, 7)
    pts = pr["points"]
    assert [p["threshold"] for p in pts] == approx([0.95, 0.9, 0.8, 0.5, 0.4, 0.35, 0.2])
    assert [p["precision"] for p in pts] == approx([0, 1 / 2, 2 / 3, 3 / 4, 3 / 5, 4 / 6, 4 / 7])
    assert [p["recall"] for p in pts] == approx([0, 1 / 4, 2 / 4, 3 / 4, 3 / 4, 1, 1])
    assert [p["f1"] for p in pts] == approx([0, 1 / 3, 4 / 7, 3 / 4, 2 / 3, 4 / 5, 8 / 11])
    assert pr["best"] == {"threshold": approx(0.35), "precision": approx(2 / 3),
                          "recall": approx(1.0), "f1": approx(0.8), "kept": 6}
    assert pr["run_threshold"] == 0.3
    assert pr["at_run_threshold"] == pr["best"]


def test_clap_map(figures):
    m = figures["pipeline_vs_experts"]["clap_map"]
    # speech: .95 R then .9 A -> AP 1/2; bark, music (.8 A over .2 R), dog: AP 1;
    # siren has no accepted candidate and is not averaged.
    per = {c["mid"]: c["ap"] for c in m["per_class"]}
    assert per == {MIDS["speech"]: approx(0.5), MIDS["bark"]: approx(1.0),
                   MIDS["music"]: approx(1.0), MIDS["dog"]: approx(1.0)}
    assert m["classes"] == 4 and m["map"] == approx(3.5 / 4)


def test_reviewer_agreement(figures):
    ra = figures["reviewer_agreement"]
    pairs = {(p["a"], p["b"]): p for p in ra["pairs"]}
    assert set(pairs) == {("r1", "r2"), ("r1", "r3"), ("r2", "r3")}
    # r1-r2 on a0: (A,A) (R,R) (A,U) (R,R): po 3/4, pe 2/4*1/4 + 2/4*2/4 = 3/8 -> 0.6
    assert pairs[("r1", "r2")]["n"] == 4
    assert pairs[("r1", "r2")]["observed_agreement"] == approx(0.75)
    assert pairs[("r1", "r2")]["kappa"] == approx(0.6)
    # r1-r3 on a1 music: (A,R): po 0, pe 0 -> 0
    assert (pairs[("r1", "r3")]["n"], pairs[("r1", "r3")]["kappa"]) == (1, approx(0.0))
    # r2-r3 on a2: (R,R) (A,A) (A,U): po 2/3, pe 1/3*1/3 + 2/3*1/3 = 1/3 -> 0.5
    assert pairs[("r2", "r3")]["n"] == 3
    assert pairs[("r2", "r3")]["kappa"] == approx(0.5)
    # 8 units with two values: AA x2, RR x3, AU x2, AR x1. o_AA 4, o_RR 6, o_AU = o_UA 2,
    # o_AR = o_RA 1; n_A 7, n_R 7, n_U 2, n 16.
    # alpha = 1 - 15 * 6 / (2 * (49 + 14 + 14)) = 64/154.
    assert (ra["units"], ra["values"]) == (8, 16)
    assert ra["alpha"] == approx(64 / 154)


def test_throughput(figures):
    t = {x["reviewer"]: x for x in figures["throughput"]}
    # r1: 7 decisions, gaps 1,1,1,2,1 min then a 54-min break -> 6 min active.
    assert (t["r1"]["decisions"], t["r1"]["clips_finished"]) == (7, 3)
    assert t["r1"]["active_hours"] == approx(0.1)
    assert t["r1"]["decisions_per_hour"] == approx(70.0)
    # r2: 7 decisions 30 s apart -> 3 min.
    assert t["r2"]["active_hours"] == approx(0.05)
    assert t["r2"]["decisions_per_hour"] == approx(140.0)
    # r3: gaps 10, 10 (at most 10 min: active), 10.5 (a break), 0.5 -> 20.5 min.
    assert (t["r3"]["decisions"], t["r3"]["clips_finished"]) == (5, 2)
    assert t["r3"]["active_hours"] == approx(20.5 / 60)
    assert t["r3"]["decisions_per_hour"] == approx(5 / (20.5 / 60))


def test_without_a_run(audit_set):
    f = dataset_audit(dataset=audit_set.dataset, use_default_run=False)
    assert f["run"] is None and f["agreement"] is None and f["pipeline_vs_experts"] is None
    assert f["label_counts"]["run"] is None
    # Resolution does not depend on the run: same curated counts.
    assert f["label_counts"]["curated"]["labels"] == 7


def test_external_label_set_run(audit_set):
    """An external label set is a run with candidates and no ClipResult: the clips it
    labels are the clips it covers."""
    from .conftest import add_candidates, make_run

    ext = make_run(audit_set.dataset, threshold=0.0, kind="external")
    add_candidates(ext, audit_set.clips[3], {"dog": 1.0, "bark": 1.0}, result=False)
    f = dataset_audit(dataset=audit_set.dataset, run=ext)
    assert f["run"]["kind"] == "external"
    assert f["label_counts"]["run"]["clips"] == 1 and f["label_counts"]["run"]["labels"] == 2
    a = f["agreement"]
    assert (a["original_labels"], a["run_labels"], a["both"]) == (1, 2, 1)
    # The default is the dataset's latest run, model chain or external label set; the
    # figures say it was chosen that way.
    latest = dataset_audit(dataset=audit_set.dataset)
    assert (latest["run"]["id"], latest["run_choice"]) == (ext.pk, "latest")
    # It covers one of the dataset's four clips.
    assert latest["coverage"] == {"covered_clips": 1, "uncovered_clips": 3}


def test_audit_command_json_prints_the_same_figures(audit_set, figures):
    out = io.StringIO()
    call_command("audit", "--dataset", "aud", "--json", stdout=out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(figures))
    out = io.StringIO()
    call_command("audit", "--dataset", "aud", "--run", str(audit_set.run.pk), stdout=out)
    assert "Krippendorff's alpha 0.416" in out.getvalue()


def test_audit_page(client, audit_set, reviewers):
    url = f"/curation/dataset/aud/audit/?run={audit_set.run.pk}"
    client.force_login(reviewers[0])
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302
    client.force_login(audit_set.users["curator"])
    # The first visit asks for a snapshot; the Celery task computes it (called directly).
    r = client.get(url)
    assert r.status_code == 200
    assert "Being computed" in r.content.decode()
    from curation.models import AuditSnapshot
    from curation.snapshots import audit_snapshot_compute

    snap = AuditSnapshot.objects.get(dataset=audit_set.dataset, run=audit_set.run)
    audit_snapshot_compute(snapshot_id=snap.pk)
    r = client.get(url)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Computed at" in html and "(0 decisions since; took" in html
    assert html.count("<svg") >= 7
    assert "best F1 0.80 at 0.350" in html
    assert "Labels per clip (% of clips)" in html
    assert "0.416" in html  # alpha
    assert "https://" not in html.split("<main", 1)[1]  # no external request in the page
