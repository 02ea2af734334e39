"""import_labelset: an external label set (JSON or segments CSV) as a run without model
outputs, on hand-made files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipeline.external_import import LabelsetImportError, labelset_import
from pipeline.models import Candidate, ClipResult, PipelineRun
from pipeline.services import run_progress
from relabel_app.models import Clip, Dataset

pytestmark = pytest.mark.django_db

SPEECH, BARK, MUSIC, SIREN = "/m/09x0r", "/m/05tny_", "/m/04rlf", "/m/03kmc9"


@pytest.fixture
def ds():
    d = Dataset.objects.create(name="ext")
    for pos, (ytid, start) in enumerate([
        ("--PJHxphWEs", 30.0), ("abcdefghijk", 0.0), ("abcdefghijk", 20.0), ("zzzzzzzzzz1", 10.0),
    ]):
        Clip.objects.create(dataset=d, ytid=ytid, start_s=start, end_s=start + 10, position=pos)
    return d


def clip(ytid: str, start: float) -> Clip:
    return Clip.objects.get(dataset__name="ext", ytid=ytid, start_s=start)


def write_json(tmp_path: Path, items: list, name: str = "set.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps({"data": items}))
    return p


def labels_of(run: PipelineRun) -> dict[tuple[str, float], set[str]]:
    out: dict[tuple[str, float], set[str]] = {}
    for c in Candidate.objects.filter(run=run).select_related("clip", "label"):
        out.setdefault((c.clip.ytid, c.clip.start_s), set()).add(c.label.mid)
    return out


GOOD = [
    {"wav": "/data/audio/Y--PJHxphWEs.wav", "labels": f"{SPEECH},{BARK}"},
    {"wav": "abcdefghijk_20.000_30.000.wav", "labels": MUSIC},
    {"wav": "Ynotindatas1.wav", "labels": SPEECH},
    {"wav": "zzzzzzzzzz1.wav", "labels": ""},
    {"wav": "nothere0002_5.wav", "labels": SIREN},
]


def test_json_import_makes_a_finished_external_run(ds, tmp_path):
    path = write_json(tmp_path, GOOD)
    r = labelset_import(path=path, dataset_name="ext", name="published")
    run = PipelineRun.objects.get(pk=r.run_id)
    assert (run.kind, run.profile_name, run.status, run.clip_count) == (
        "external", "published", "done", 3
    )
    assert run.config["source"] == str(path.resolve())
    assert run.config["format"] == "json" and len(run.config["sha256"]) == 64
    assert (r.created, r.items_read, r.items_matched, r.clips_matched, r.candidates) == (
        True, 5, 3, 3, 3
    )
    # Clips not in the dataset are reported, in file order.
    assert (r.unmatched_items, r.unmatched_ytids) == (2, ["notindatas1", "nothere0002"])
    assert labels_of(run) == {
        ("--PJHxphWEs", 30.0): {SPEECH, BARK},
        ("abcdefghijk", 20.0): {MUSIC},
    }
    cands = Candidate.objects.filter(run=run)
    assert all(
        (c.tier, c.kept, c.selected, c.clap_score, c.attempt) == ("external", True, True, None, 0)
        for c in cands
    )
    # Every matched clip has a finished result, the one with no label included.
    results = ClipResult.objects.filter(run=run)
    assert {(x.clip.ytid, x.clip.start_s) for x in results} == {
        ("--PJHxphWEs", 30.0), ("abcdefghijk", 20.0), ("zzzzzzzzzz1", 10.0)
    }
    assert all(
        (x.caption_status, x.predict_status, x.match_status, x.filter_status, x.error_stage)
        == ("done", "done", "done", "done", "") for x in results
    )
    p = run_progress(run=run)
    assert (p.total, p.finished, p.percent, p.status) == (3, 3, 100.0, "done")


def test_reimport_same_name_replaces_idempotently(ds, tmp_path):
    first = labelset_import(path=write_json(tmp_path, GOOD), dataset_name="ext", name="pub")
    again = labelset_import(path=write_json(tmp_path, GOOD), dataset_name="ext", name="pub")
    assert again.run_id == first.run_id and not again.created
    assert (again.added_candidates, again.removed_candidates, again.candidates) == (0, 0, 3)
    assert Candidate.objects.filter(run_id=first.run_id).count() == 3
    assert ClipResult.objects.filter(run_id=first.run_id).count() == 3
    changed = [{"wav": "abcdefghijk_0.wav", "labels": SIREN}]
    r = labelset_import(path=write_json(tmp_path, changed), dataset_name="ext", name="pub")
    run = PipelineRun.objects.get(pk=first.run_id)
    assert r.run_id == run.pk and run.clip_count == 1
    assert (r.added_candidates, r.removed_candidates, r.candidates) == (1, 3, 1)
    assert labels_of(run) == {("abcdefghijk", 0.0): {SIREN}}
    assert ClipResult.objects.filter(run=run).count() == 1
    assert PipelineRun.objects.filter(kind="external").count() == 1
    # Another name is another run.
    other = labelset_import(path=write_json(tmp_path, GOOD), dataset_name="ext", name="other")
    assert other.run_id != run.pk and other.created


def test_unknown_mid_stops_with_item_number_and_writes_nothing(ds, tmp_path):
    items = GOOD[:2] + [{"wav": "Yzzzzzzzzzz1.wav", "labels": f"{SPEECH},/m/bogus"}]
    path = write_json(tmp_path, items)
    with pytest.raises(LabelsetImportError, match=r"item 3: unknown label '/m/bogus'"):
        labelset_import(path=path, dataset_name="ext", name="pub")
    assert not PipelineRun.objects.filter(kind="external").exists()
    assert not Candidate.objects.exists() and not ClipResult.objects.exists()

    r = labelset_import(path=path, dataset_name="ext", name="pub", skip_bad=True)
    assert [(b.where, b.reason) for b in r.bad_items] == [("item 3", "unknown label '/m/bogus'")]
    assert r.items_read == 3 and r.candidates == 3
    assert ("zzzzzzzzzz1", 10.0) not in labels_of(PipelineRun.objects.get(pk=r.run_id))


def test_reimport_failure_keeps_the_previous_import(ds, tmp_path):
    r = labelset_import(path=write_json(tmp_path, GOOD), dataset_name="ext", name="pub")
    bad = write_json(tmp_path, [{"wav": "abcdefghijk_0.wav", "labels": "/m/bogus"},
                                {"wav": "zzzzzzzzzz1.wav", "labels": SPEECH}], "b.json")
    with pytest.raises(LabelsetImportError):
        labelset_import(path=bad, dataset_name="ext", name="pub")
    assert Candidate.objects.filter(run_id=r.run_id).count() == 3


@pytest.mark.parametrize(("items", "reason"), [
    ([{"wav": "x.wav"}], 'item 1: item needs string fields "wav" and "labels"'),
    (["just a string"], 'item 1: item needs string fields "wav" and "labels"'),
    ([{"wav": "not-a-ytid.wav", "labels": SPEECH}], "item 1: no YouTube id in file name"),
    ([{"wav": "abcdefghijk_0.wav", "labels": f"{SPEECH},,{BARK}"}],
     "item 1: empty label in the label list"),
    # The same clip twice (a second file name for the same segment).
    ([{"wav": "Y--PJHxphWEs.wav", "labels": SPEECH},
      {"wav": "--PJHxphWEs_30.000_40.000.wav", "labels": BARK}],
     r"item 2: clip --PJHxphWEs at 30.000 s is already given by item 1"),
])
def test_bad_items(ds, tmp_path, items, reason):
    # One good item too: a file matching no clip at all fails on its own (tested below).
    path = write_json(tmp_path, [*items, {"wav": "zzzzzzzzzz1.wav", "labels": SPEECH}])
    with pytest.raises(LabelsetImportError, match=reason):
        labelset_import(path=path, dataset_name="ext", name="pub")
    assert not Candidate.objects.exists()
    r = labelset_import(path=path, dataset_name="ext", name="pub", skip_bad=True)
    assert len(r.bad_items) == 1


def test_duplicate_skipped_keeps_first_item(ds, tmp_path):
    items = [{"wav": "Y--PJHxphWEs.wav", "labels": SPEECH},
             {"wav": "--PJHxphWEs_30.000_40.000.wav", "labels": BARK}]
    r = labelset_import(path=write_json(tmp_path, items), dataset_name="ext", name="pub",
                        skip_bad=True)
    assert labels_of(PipelineRun.objects.get(pk=r.run_id)) == {("--PJHxphWEs", 30.0): {SPEECH}}
    assert r.unmatched_items == 0


def test_no_start_and_several_segments_labels_each(ds, tmp_path):
    r = labelset_import(path=write_json(tmp_path, [{"wav": "abcdefghijk.wav", "labels": BARK}]),
                        dataset_name="ext", name="pub")
    assert (r.ambiguous_items, r.clips_matched) == (1, 2)
    assert labels_of(PipelineRun.objects.get(pk=r.run_id)) == {
        ("abcdefghijk", 0.0): {BARK}, ("abcdefghijk", 20.0): {BARK}
    }


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not valid JSON"),
    ('{"items": []}', r'expected an object \{"data": \[...\]\}'),
    ("[1, 2]", r'expected an object \{"data": \[...\]\}'),
])
def test_bad_documents(ds, tmp_path, content, reason):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(LabelsetImportError, match=reason):
        labelset_import(path=p, dataset_name="ext", name="pub", skip_bad=True)


def test_missing_dataset_or_bad_name_is_an_error(ds, tmp_path):
    with pytest.raises(LabelsetImportError, match="no dataset named 'nope'"):
        labelset_import(path=write_json(tmp_path, GOOD), dataset_name="nope", name="pub")
    for name in ("", "  ", "x" * 101):
        with pytest.raises(LabelsetImportError, match="the name must be 1 to 100 characters"):
            labelset_import(path=write_json(tmp_path, GOOD), dataset_name="ext", name=name)


CSV = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    f'--PJHxphWEs, 30.000, 40.000, "{SPEECH},{BARK}"\n'
    f'abcdefghijk, 40.000, 50.000, "{MUSIC}"\n'
    f'abcdefghijk, 0.000, 10.000, "{SIREN}"\n'
)


def test_segments_csv(ds, tmp_path):
    p = tmp_path / "set.csv"
    p.write_text(CSV)
    r = labelset_import(path=p, dataset_name="ext", name="csvset")
    assert r.format == "csv"
    # abcdefghijk at 40 s is not a segment of the dataset.
    assert (r.items_read, r.unmatched_items, r.unmatched_ytids) == (3, 1, ["abcdefghijk"])
    assert labels_of(PipelineRun.objects.get(pk=r.run_id)) == {
        ("--PJHxphWEs", 30.0): {SPEECH, BARK}, ("abcdefghijk", 0.0): {SIREN}
    }
    p.write_text(CSV + 'zzzzzzzzzz1, 10.000, 20.000, "/m/09x0r,/m/zzz"\n')
    with pytest.raises(LabelsetImportError, match=r"line 7: unknown label '/m/zzz'"):
        labelset_import(path=p, dataset_name="ext", name="csvset2")
    assert not PipelineRun.objects.filter(profile_name="csvset2").exists()


def test_command(ds, tmp_path, capsys):
    path = write_json(tmp_path, GOOD)
    call_command("import_labelset", str(path), dataset="ext", name="published")
    out, err = capsys.readouterr()
    assert "label set 'published' created as run" in out
    assert "5 items read, 3 matched 3 clips, 3 labels" in out
    assert "2 items are not clips of ext and were not imported: notindatas1, nothere0002" in err
    call_command("import_labelset", str(path), dataset="ext", name="published")
    out, _ = capsys.readouterr()
    assert "re-imported as run" in out and "0 labels added, 0 removed" in out

    bad = write_json(tmp_path, [{"wav": "abcdefghijk_0.wav", "labels": "/m/bogus"},
                                {"wav": "zzzzzzzzzz1.wav", "labels": SPEECH}], "b.json")
    with pytest.raises(CommandError, match=r"item 1: unknown label.*\nNothing was imported"):
        call_command("import_labelset", str(bad), dataset="ext", name="b")
    call_command("import_labelset", str(bad), dataset="ext", name="b", skip_bad=True)
    _, err = capsys.readouterr()
    assert "item 1: skipped: unknown label '/m/bogus'" in err
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_labelset", str(tmp_path / "none.json"), dataset="ext", name="b")


def test_a_file_matching_no_clip_fails_and_creates_nothing(ds, tmp_path):
    """The wrong dataset: exit 1 (CommandError), no run, no candidates."""
    path = write_json(tmp_path, [{"wav": "Ynotindatas1.wav", "labels": SPEECH},
                                 {"wav": "nothere0002_5.wav", "labels": SIREN}])
    with pytest.raises(LabelsetImportError, match=r"none of its 2 items matches a clip of "
                                                  r"dataset 'ext'.*notindatas1"):
        labelset_import(path=path, dataset_name="ext", name="wrong")
    with pytest.raises(CommandError, match="none of its 2 items.*\nNothing was imported"):
        call_command("import_labelset", str(path), dataset="ext", name="wrong")
    assert not PipelineRun.objects.filter(dataset=ds).exists()
    assert not Candidate.objects.exists() and not ClipResult.objects.exists()


def test_more_than_half_unmatched_is_said_loudly(ds, tmp_path, capsys):
    items = [{"wav": "zzzzzzzzzz1.wav", "labels": SPEECH},
             {"wav": "Ynotindatas1.wav", "labels": SPEECH},
             {"wav": "nothere0002_5.wav", "labels": SIREN}]
    call_command("import_labelset", str(write_json(tmp_path, items)), dataset="ext", name="m")
    _, err = capsys.readouterr()
    assert "WARNING: MORE THAN HALF OF THE FILE DOES NOT MATCH: 2 of 3 items (66.7%)" in err
    # Exactly half is not "more than half": only the ordinary warning.
    call_command("import_labelset", str(write_json(tmp_path, items[:2], "h.json")),
                 dataset="ext", name="h")
    _, err = capsys.readouterr()
    assert "MORE THAN HALF" not in err and "1 items are not clips of ext" in err
