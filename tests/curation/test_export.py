"""Resolution rules, the three policies, the three export formats and the round trip, on
the hand-built ``policy_set`` (see conftest.py for what each clip holds and why)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from curation.exports import export_to_path, export_write
from curation.selectors import clip_label_states
from relabel_app.segment_import import segments_import

from .conftest import MIDS, add_candidates, decide, label, make_clip

M = MIDS


def _export(ds, fmt="csv", policy="keep-original"):
    buf = io.BytesIO()
    result = export_write(dataset=ds, fmt=fmt, policy=policy, out=buf)
    return buf.getvalue().decode(), result


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def _header(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


KEEP_ORIGINAL_ROWS = [
    f'AAAAAAAAAA0, 0.000, 10.000, "{M["speech"]},{M["bark"]}"',
    f'BBBBBBBBBB1, 10.000, 20.000, "{M["siren"]},{M["music"]}"',
    f'BBBBBBBBBB1, 30.500, 40.500, "{M["speech"]},{M["cat"]}"',
    f'DDDDDDDDDD3, 1.250, 11.250, "{M["dog"]},{M["siren"]}"',
]


def test_keep_original_rows_and_exact_header(policy_set):
    text, r = _export(policy_set.dataset)
    # c0: speech 2-0, dog 0-2 out, bark tie but adjudicated accept, music 0-1 out.
    # c1: unresolved originals stay, the unresolved candidate (dog) is left out.
    # c2: speech 1-1 tie stays (original), cat added by a reviewer 1-0.
    # c3: adjudication beats the 0-2 majority; siren added by the curator.
    # c4: its only label was rejected -> no label -> left out.
    assert _rows(text) == KEEP_ORIGINAL_ROWS
    head = _header(text)
    assert len(head) == 3
    assert head[0].startswith("# Segments csv created ")
    assert "policy keep-original; 1 of 5 clips left out (no curated label)" in head[0]
    # c1 and c2 share a YTID: 3 distinct YTIDs in 4 segments; 8 labels of 6 classes.
    assert head[1] == "# num_ytids=3, num_segs=4, num_unique_labels=6, num_positive_labels=8"
    assert head[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    assert (r.rows, r.num_segs, r.num_ytids, r.clips_in_scope, r.clips_left_out) == (4, 4, 3, 5, 1)
    assert text.endswith("\n")


def test_strict_keeps_accepted_labels_only(policy_set):
    text, r = _export(policy_set.dataset, policy="strict")
    assert _rows(text) == [
        f'AAAAAAAAAA0, 0.000, 10.000, "{M["speech"]},{M["bark"]}"',
        f'BBBBBBBBBB1, 30.500, 40.500, "{M["cat"]}"',
        f'DDDDDDDDDD3, 1.250, 11.250, "{M["dog"]},{M["siren"]}"',
    ]
    assert _header(text)[1] == (
        "# num_ytids=3, num_segs=3, num_unique_labels=5, num_positive_labels=5")
    assert (r.clips_in_scope, r.clips_left_out) == (5, 2)


def test_reviewed_only_takes_clips_every_required_reviewer_finished(policy_set):
    text, r = _export(policy_set.dataset, policy="reviewed-only")
    # Two reviews required: c0, c3, c4 qualify; c4 has no label left.
    assert _rows(text) == [KEEP_ORIGINAL_ROWS[0], KEEP_ORIGINAL_ROWS[3]]
    assert _header(text)[1] == (
        "# num_ytids=2, num_segs=2, num_unique_labels=4, num_positive_labels=4")
    assert (r.clips_in_scope, r.clips_left_out) == (3, 1)

    # One review required: c2 (finished by r1 only) qualifies too, resolved as keep-original
    # (its tied original label stays).
    policy_set.dataset.required_reviews = 1
    policy_set.dataset.save()
    text, r = _export(policy_set.dataset, policy="reviewed-only")
    assert _rows(text) == [KEEP_ORIGINAL_ROWS[0], KEEP_ORIGINAL_ROWS[2], KEEP_ORIGINAL_ROWS[3]]
    assert (r.num_segs, r.num_ytids, r.num_positive_labels, r.num_unique_labels) == (3, 3, 6, 5)
    assert (r.clips_in_scope, r.clips_left_out) == (4, 1)


def test_unsure_does_not_vote_and_ties_are_unresolved(policy_set, reviewers, curator):
    r1, r2, r3 = reviewers
    ds = policy_set.dataset
    c = make_clip(ds, "FFFFFFFFFF5", 0.0, 5, ["dog", "music", "siren"])
    # dog: accept + unsure + unsure -> 1-0 accepted.
    decide(c, "dog", r1, "accept")
    decide(c, "dog", r2, "unsure")
    decide(c, "dog", r3, "unsure")
    # music: unsure only -> unresolved (original stays under keep-original).
    decide(c, "music", r1, "unsure")
    # siren: 2-1 rejected.
    decide(c, "siren", r1, "reject")
    decide(c, "siren", r2, "reject")
    decide(c, "siren", r3, "accept")
    states = {s.label.mid: s for s in clip_label_states(clip=c, run=None)}
    assert states[M["dog"]].accepted is True
    assert states[M["music"]].accepted is None and states[M["music"]].curated is True
    assert states[M["siren"]].accepted is False and states[M["siren"]].curated is False
    text, _ = _export(ds)
    assert f'FFFFFFFFFF5, 0.000, 10.000, "{M["dog"]},{M["music"]}"' in _rows(text)
    text, _ = _export(ds, policy="strict")
    assert f'FFFFFFFFFF5, 0.000, 10.000, "{M["dog"]}"' in _rows(text)


def test_run_changes_pairs_not_the_exported_set(policy_set):
    """An unresolved candidate is left out under every policy, so which run is chosen
    cannot change an export; it does change what the adjudication page lists."""
    c0, c1 = policy_set.clips[:2]
    states = {s.label.mid: s for s in clip_label_states(clip=c0, run=policy_set.run)}
    assert set(states) == {M["speech"], M["dog"], M["bark"], M["music"]}
    bark = states[M["bark"]]
    assert (bark.is_candidate, bark.kept, bark.n_accept, bark.n_reject) == (True, True, 1, 1)
    assert bark.adjudication.verdict == "accept" and bark.state == "accepted"
    assert states[M["music"]].clap_score == pytest.approx(0.12)
    assert states[M["music"]].state == "rejected"
    assert states[M["speech"]].origin == "original + candidate"
    no_run = {s.label.mid for s in clip_label_states(clip=c1, run=None)}
    with_run = {s.label.mid for s in clip_label_states(clip=c1, run=policy_set.run)}
    assert no_run == {M["siren"], M["music"]}
    assert with_run == no_run | {M["dog"]}


def test_round_trip_through_import_segments(policy_set, tmp_path):
    path = tmp_path / "cur.csv"
    result = export_to_path(dataset=policy_set.dataset, fmt="csv", path=path)
    assert result.bytes == path.stat().st_size
    with open(path, "rb") as f:
        report = segments_import(source=f, source_name=str(path), dataset_name="roundtrip")
    assert report.bad_rows == []
    assert report.header_mismatches(report.positive_labels, report.unique_labels) == []
    assert report.header_counts == {"num_ytids": 3, "num_segs": 4, "num_unique_labels": 6,
                                    "num_positive_labels": 8}

    from relabel_app.models import Clip

    def labels_per_clip(dataset_name, only=None):
        out = {}
        for clip in Clip.objects.filter(dataset__name=dataset_name).prefetch_related("labels"):
            out[(clip.ytid, clip.start_s, clip.end_s)] = {lab.mid for lab in clip.labels.all()}
        return out

    expected = {}
    for clip in policy_set.clips:
        curated = {s.label.mid for s in clip_label_states(clip=clip, run=policy_set.run)
                   if s.curated}
        if curated:
            expected[(clip.ytid, clip.start_s, clip.end_s)] = curated
    assert labels_per_clip("roundtrip") == expected
    # Exporting the imported copy gives the same rows again (same order too).
    from relabel_app.models import Dataset

    again, _ = _export(Dataset.objects.get(name="roundtrip"))
    assert _rows(again) == KEEP_ORIGINAL_ROWS


def test_json_format(policy_set):
    ds = policy_set.dataset
    ds.audio_root = "/srv/audio/cur"
    ds.save()
    c1 = policy_set.clips[1]
    c1.audio_path = 'odd "dir"\\x/B.wav'  # JSON escaping must survive COPY untouched
    c1.save()
    text, r = _export(ds, fmt="json")
    doc = json.loads(text)
    assert doc == {"data": [
        {"wav": "/srv/audio/cur/a/c0.wav", "labels": f'{M["speech"]},{M["bark"]}'},
        {"wav": '/srv/audio/cur/odd "dir"\\x/B.wav', "labels": f'{M["siren"]},{M["music"]}'},
        {"wav": "YBBBBBBBBBB1.wav", "labels": f'{M["speech"]},{M["cat"]}'},
        {"wav": "YDDDDDDDDDD3.wav", "labels": f'{M["dog"]},{M["siren"]}'},
    ]}
    assert r.rows == 4
    text, _ = _export(ds, fmt="json", policy="reviewed-only")
    assert [d["wav"] for d in json.loads(text)["data"]] == ["/srv/audio/cur/a/c0.wav",
                                                            "YDDDDDDDDDD3.wav"]


def test_json_of_an_empty_selection_is_valid(policy_set):
    from relabel_app.models import Dataset

    empty = Dataset.objects.create(name="empty")
    text, r = _export(empty, fmt="json")
    assert json.loads(text) == {"data": []} and r.rows == 0
    text, r = _export(empty, fmt="csv")
    assert _header(text)[1] == (
        "# num_ytids=0, num_segs=0, num_unique_labels=0, num_positive_labels=0")
    assert _rows(text) == []


def test_decisions_csv(policy_set):
    r1 = policy_set.users["r1"]
    c4 = policy_set.clips[4]
    from review.models import Decision, ErrorCategory

    cat, _ = ErrorCategory.objects.get_or_create(slug="t-orig-wrong",
                                                 defaults={"name": "orig wrong"})
    Decision.objects.filter(clip=c4, reviewer=r1).update(
        error_category=cat, note='says "music",\nbut it is a hum')
    text, r = _export(policy_set.dataset, fmt="decisions")
    rows = list(csv.DictReader(io.StringIO(text)))
    # 15 reviewer decisions (c0: 8, c2: 3, c3: 2, c4: 2) and 3 adjudications.
    assert r.rows == len(rows) == 18
    assert list(rows[0]) == ["ytid", "start_seconds", "end_seconds", "label_mid", "label_name",
                             "reviewer", "source", "verdict", "error_category", "note", "time"]
    first = rows[0]
    assert (first["ytid"], first["start_seconds"], first["label_mid"], first["label_name"],
            first["reviewer"], first["source"], first["verdict"]) == (
        "AAAAAAAAAA0", "0.000", M["speech"], "Speech", "r1", "review", "accept")
    assert first["time"].endswith("Z") and "T" in first["time"]
    adjudications = [x for x in rows if x["source"] == "adjudication"]
    assert {(x["ytid"], x["label_mid"], x["verdict"], x["reviewer"]) for x in adjudications} == {
        ("AAAAAAAAAA0", M["bark"], "accept", "cora"),
        ("DDDDDDDDDD3", M["dog"], "accept", "cora"),
        ("DDDDDDDDDD3", M["siren"], "accept", "cora"),
    } and len(adjudications) == 3
    noted = [x for x in rows if x["note"]]
    assert len(noted) == 1
    assert noted[0]["note"] == 'says "music",\nbut it is a hum'
    assert noted[0]["error_category"] == "t-orig-wrong" and noted[0]["ytid"] == "EEEEEEEEEE4"


def test_decisions_count_matches_fixture(policy_set):
    from curation.models import Adjudication
    from review.models import Decision

    assert Decision.objects.filter(clip__dataset=policy_set.dataset).count() == 15
    assert Adjudication.objects.filter(clip__dataset=policy_set.dataset).count() == 3


def test_cli_export(policy_set, tmp_path):
    out = io.StringIO()
    path = tmp_path / "x" / "cur.json"
    call_command("export", "--dataset", "cur", "--format", "json", "--policy", "strict",
                 "--out", str(path), stdout=out)
    assert len(json.loads(path.read_text())["data"]) == 3
    assert "3 clips, 5 labels of 5 classes (2 of 5 clips left out" in out.getvalue()
    path = tmp_path / "cur.csv"
    call_command("export", "--dataset", "cur", "--out", str(path), stdout=io.StringIO())
    assert _rows(path.read_text()) == KEEP_ORIGINAL_ROWS
    with pytest.raises(CommandError, match="no dataset"):
        call_command("export", "--dataset", "nope", "--out", str(path))
    with pytest.raises(CommandError):
        call_command("export", "--dataset", "cur", "--policy", "lenient", "--out", str(path))
    # No temporary file is left beside the output.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cur.csv", "x"]


def test_non_selected_attempts_are_not_candidates(policy_set):
    c1 = policy_set.clips[1]
    add_candidates(policy_set.run, c1, {"cat": 0.9}, selected=False, attempt=1)
    mids = {s.label.mid for s in clip_label_states(clip=c1, run=policy_set.run)}
    assert label("cat").mid not in mids
