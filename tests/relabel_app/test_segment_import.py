import io
import json

import pytest
from django.core.management import CommandError, call_command

from relabel_app.labels_json_import import labels_json_import
from relabel_app.models import Clip, ClipLabel, Dataset
from relabel_app.segment_import import SegmentImportError, segments_import

pytestmark = pytest.mark.django_db

HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=4, num_positive_labels=4\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)
GOOD = (
    HEADER
    + '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
    + '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n'
    + 'Y-aB_c9dEfG, 0.000, 10.000, "/m/05tny_"\n'
)


def run_import(text: str | bytes, dataset="d1", **kw):
    data = text.encode() if isinstance(text, str) else text
    return segments_import(source=io.BytesIO(data), source_name="x.csv", dataset_name=dataset, **kw)


def labels_of(ytid: str) -> set[str]:
    return set(ClipLabel.objects.filter(clip__ytid=ytid).values_list("label__mid", flat=True))


def test_import_creates_clips_labels_in_file_order():
    r = run_import(GOOD)
    assert (r.rows_read, r.clips_created, r.labels_created) == (3, 3, 4)
    clips = list(Clip.objects.filter(dataset__name="d1").order_by("position"))
    assert [c.ytid for c in clips] == ["--PJHxphWEs", "--ZhevVpy1s", "Y-aB_c9dEfG"]
    assert (clips[0].start_s, clips[0].end_s) == (30.0, 40.0)
    assert labels_of("--PJHxphWEs") == {"/m/09x0r", "/t/dd00088"}
    assert r.header_counts["num_positive_labels"] == 4
    assert r.header_mismatches(r.positive_labels, r.unique_labels) == []
    # The id sequence moved past the reserved ids: a normal insert still works.
    extra = Clip.objects.create(dataset=clips[0].dataset, ytid="zzzzzzzzzzz", start_s=0, end_s=1)
    assert extra.id > max(c.id for c in clips)


def test_reimport_adds_no_duplicates_and_merges_new_labels():
    run_import(GOOD)
    r = run_import(GOOD)
    assert (r.clips_created, r.clips_existing, r.labels_created) == (0, 3, 0)
    assert Clip.objects.filter(dataset__name="d1").count() == 3
    assert ClipLabel.objects.filter(clip__dataset__name="d1").count() == 4
    r = run_import('--ZhevVpy1s, 50.000, 60.000, "/m/012xff,/m/05tny_"\n')
    assert (r.clips_created, r.labels_created) == (0, 1)
    assert labels_of("--ZhevVpy1s") == {"/m/012xff", "/m/05tny_"}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ('abc, 1.0, "/m/09x0r"', "expected 4 fields"),
        ('abcdefghijk, x, 10.0, "/m/09x0r"', "not numbers"),
        ('abcdefghijk, 10.0, 5.0, "/m/09x0r"', "invalid segment times"),
        ('abcdefghijk, 0.0, 10.0, "/m/nope"', "unknown label '/m/nope'"),
        ('abc def!, 0.0, 10.0, "/m/09x0r"', "invalid YTID"),
        ('abcdefghijk, 0.0, 10.0, "/m/09x0r', "unterminated"),
        ('abcdefghijk, 0.0, 10.0, "/m/09x0r,,"', "empty label"),
        ('--PJHxphWEs, 30.000, 40.000, "/m/09x0r"', "duplicate segment --PJHxphWEs"),
    ],
)
def test_bad_row_stops_with_line_number_and_writes_nothing(row, reason):
    with pytest.raises(SegmentImportError) as exc:
        run_import(GOOD + row + "\n")
    assert exc.value.line == 7
    assert reason in exc.value.reason
    assert str(exc.value).startswith("x.csv:7: ")
    assert not Clip.objects.filter(dataset__name="d1").exists()
    assert not ClipLabel.objects.filter(clip__dataset__name="d1").exists()


def test_skip_bad_imports_good_rows_and_reports_each_bad_one():
    text = GOOD + 'bad row\nabcdefghijk, 0.0, 10.0, "/m/nope"\nabcdefghijk, 0.0, 10.0, "/m/09x0r"\n'
    r = run_import(text, skip_bad=True)
    assert [(b.line, b.reason.split(" ")[0]) for b in r.bad_rows] == [(7, "expected"), (8, "unknown")]
    assert r.clips_created == 4
    assert labels_of("abcdefghijk") == {"/m/09x0r"}


def test_huge_line_is_a_bad_row_not_a_memory_blowup():
    huge = b"abcdefghijk, 0.0, 10.0, \"" + b"/m/09x0r," * 2_000_000 + b'"\n'
    data = GOOD.encode() + huge + b'bcdefghijkl, 0.0, 10.0, "/m/09x0r"\n'
    with pytest.raises(SegmentImportError) as exc:
        run_import(data)
    assert (exc.value.line, "longer than") == (7, exc.value.reason[5:16])
    r = run_import(data, skip_bad=True)
    assert r.clips_created == 4 and [b.line for b in r.bad_rows] == [7]


def test_crlf_and_unquoted_single_label_rows():
    r = run_import('abcdefghijk, 0.000, 10.000, /m/09x0r\r\nbcdefghijkl, 1, 11, "/m/05tny_"\r\n')
    assert r.clips_created == 2 and r.bad_rows == []
    assert labels_of("abcdefghijk") == {"/m/09x0r"}


def test_command_builtin_balanced_train_matches_header_counts(capsys):
    call_command("import_segments", "--builtin", "balanced_train", "--dataset", "balanced")
    out = capsys.readouterr()
    assert "22160 clips created" in out.out
    assert "warning" not in out.err
    ds = Dataset.objects.get(name="balanced")
    assert Clip.objects.filter(dataset=ds).count() == 22160
    assert ClipLabel.objects.filter(clip__dataset=ds).count() == 52882


def test_command_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "oops\n")
    with pytest.raises(CommandError, match=r"bad\.csv:7: expected 4 fields.*\nNothing was imported"):
        call_command("import_segments", str(path), "--dataset", "d2")
    assert not Dataset.objects.filter(name="d2", clips__isnull=False).exists()


def test_labels_json_import(tmp_path):
    doc = {"data": [
        {"wav": "/data/audio/Y--PJHxphWEs.wav", "labels": "/m/09x0r,/t/dd00088"},
        {"wav": "audio/YabcdefghijK.wav", "labels": "/m/05tny_"},
    ]}
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(doc))
    r = labels_json_import(path=path, dataset_name="j")
    assert (r.clips_created, r.labels_created) == (2, 3)
    assert labels_of("--PJHxphWEs") == {"/m/09x0r", "/t/dd00088"}
    assert labels_of("abcdefghijK") == {"/m/05tny_"}


def test_labels_json_bad_item_names_the_item(tmp_path):
    doc = {"data": [
        {"wav": "Y--PJHxphWEs.wav", "labels": "/m/09x0r"},
        {"wav": "Y--ZhevVpy1s.wav", "labels": "/m/unknown"},
    ]}
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SegmentImportError, match="item 2: unknown label"):
        labels_json_import(path=path, dataset_name="j2")
    assert not Clip.objects.filter(dataset__name="j2").exists()
    path.write_text("{not json")
    with pytest.raises(SegmentImportError, match="not valid JSON"):
        labels_json_import(path=path, dataset_name="j2")
