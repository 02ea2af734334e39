"""Hostile import files through the three importers (management commands, as a user runs
them): malformed CSV and JSON, unknown MIDs, duplicate rows, a line break smuggled into a
JSON item, JSON nested too deep, and a 1 GB line (a sparse file: nothing of that size is
written or held in memory). Each stops with a clear error naming the file and the line or
item, and nothing is half-imported: every table is as it was (counted and compared)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipeline.models import Candidate, ClipResult, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset

pytestmark = pytest.mark.django_db

SPEECH, DOG, BARK, MUSIC, SIREN = "/m/09x0r", "/m/0bt9lr", "/m/05tny_", "/m/04rlf", "/m/03kmc9"
HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_positive_labels=4, num_unique_labels=3\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)
EXISTING = (  # the dataset "imp" before every test
    f'existing001, 0.000, 10.000, "{SPEECH}"\n'
    f'existing002, 30.000, 40.000, "{DOG},{BARK}"\n'
)
# Good rows before the bad one, so a non-transactional importer would have written them:
# one adds a label to an existing clip, one is a new clip.
GOOD_ROWS = (
    f'existing001, 0.000, 10.000, "{SPEECH},{MUSIC}"\n'
    f'newclip0001, 5.000, 15.000, "{SIREN}"\n'
)
BAD_LINE = 6  # 3 header lines, 2 good rows, then the bad one
GIB = 1024 ** 3


def state() -> dict:
    """What an import could touch: row counts and the content of the datasets."""
    return {
        "datasets": sorted(Dataset.objects.values_list("name", flat=True)),
        "clips": sorted(Clip.objects.values_list("dataset__name", "ytid", "start_s", "end_s")),
        "labels": sorted(ClipLabel.objects.values_list("clip__ytid", "clip__start_s",
                                                       "label__mid")),
        "runs": sorted(PipelineRun.objects.values_list("id", "profile_name", "status",
                                                       "clip_count")),
        "results": ClipResult.objects.count(),
        "candidates": sorted(Candidate.objects.values_list("run_id", "clip__ytid",
                                                           "label__mid")),
        "n": [m.objects.count() for m in (Dataset, Clip, ClipLabel, PipelineRun, ClipResult,
                                          Candidate)],
    }


@pytest.fixture
def imp(tmp_path):
    """Dataset "imp" (2 clips, 3 labels) and its external label set "published"."""
    path = tmp_path / "existing.csv"
    path.write_text(HEADER + EXISTING)
    call_command("import_segments", str(path), "--dataset", "imp")
    published = tmp_path / "published.json"
    published.write_text(json.dumps({"data": [
        {"wav": "Yexisting001.wav", "labels": f"{SPEECH},{MUSIC}"},
        {"wav": "existing002_30.000.wav", "labels": DOG},
    ]}))
    call_command("import_labelset", str(published), "--dataset", "imp", "--name", "published")
    assert Clip.objects.count() == 2 and Candidate.objects.count() == 3
    return state()


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def write_huge_line(tmp_path: Path, name: str, head: str, size: int = GIB) -> Path:
    """``head`` and then one line of ``size`` bytes with no newline, as a sparse file."""
    p = tmp_path / name
    with open(p, "wb") as f:
        f.write(head.encode())
        f.truncate(len(head.encode()) + size)
    assert p.stat().st_blocks * 512 < 10 * 1024 * 1024  # nothing of that size on disk
    return p


def refused(command: str, path: Path, *args: str, peak_mb: float | None = None) -> str:
    """Run the command, expect it to stop; return its message. With ``peak_mb``, Python's
    memory peak during the command stays below it."""
    if peak_mb is not None:
        tracemalloc.start()
    try:
        with pytest.raises(CommandError) as e:
            call_command(command, str(path), *args)
    finally:
        if peak_mb is not None:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            assert peak < peak_mb, f"{command} held {peak:.0f} MB for a huge line"
    msg = str(e.value)
    assert "Nothing was imported." in msg
    return msg


# --- import_segments --------------------------------------------------------------------

SEGMENT_CASES = {
    "missing field": ("newclip0002, 0.000, 10.000\n", "expected 4 fields"),
    "too many fields": ("newclip0002, 0, 10, /m/09x0r, x\n", "expected 4 fields"),
    "not numbers": (f'newclip0002, zero, 10.000, "{SPEECH}"\n', "start/end are not numbers"),
    "end before start": (f'newclip0002, 20.000, 10.000, "{SPEECH}"\n',
                         "invalid segment times"),
    "unterminated quote": (f'newclip0002, 0.000, 10.000, "{SPEECH}\n',
                           "unterminated quoted label list"),
    "bad ytid": (f'<script>, 0.000, 10.000, "{SPEECH}"\n', "invalid YTID"),
    "empty label": (f'newclip0002, 0.000, 10.000, "{SPEECH},,{DOG}"\n',
                    "empty label in the label list"),
    "unknown mid": ('newclip0002, 0.000, 10.000, "/m/09x0r,/m/notamid"\n',
                    "unknown label '/m/notamid'"),
    "duplicate row": (f'newclip0001, 5.000, 15.000, "{DOG}"\n',
                      "duplicate segment newclip0001 at 5.000 in this file"),
    "binary junk": (b"\xff\xfe\x00\x01garbage\x00, 1, 2, 3\n", "invalid YTID"),
}


@pytest.mark.parametrize("case", SEGMENT_CASES)
def test_import_segments_refuses_a_bad_row_with_its_line(imp, tmp_path, case):
    bad, reason = SEGMENT_CASES[case]
    body = bad if isinstance(bad, bytes) else bad.encode()
    path = write(tmp_path, "bad.csv", (HEADER + GOOD_ROWS).encode() + body)
    for dataset in ("imp", "brand-new"):
        msg = refused("import_segments", path, "--dataset", dataset)
        assert f"{path}:{BAD_LINE}: {reason}" in msg
        assert state() == imp


def test_import_segments_skip_bad_reports_each_bad_line(imp, tmp_path, capsys):
    rows = "".join(bad.decode(errors="replace") if isinstance(bad, bytes) else bad
                   for bad, _ in SEGMENT_CASES.values())
    path = write(tmp_path, "bad.csv", HEADER + GOOD_ROWS + rows)
    call_command("import_segments", str(path), "--dataset", "imp", "--skip-bad")
    err = capsys.readouterr().err
    for i, (_, reason) in enumerate(SEGMENT_CASES.values()):
        assert f"{path}:{BAD_LINE + i}: skipped: {reason}" in err
    # Only the good rows: a label added to existing001, one new clip.
    assert Clip.objects.count() == 3
    assert ClipLabel.objects.filter(clip__ytid="existing001").count() == 2


@pytest.mark.slow
def test_import_segments_one_gigabyte_line(imp, tmp_path):
    path = write_huge_line(tmp_path, "huge.csv", HEADER + GOOD_ROWS)
    msg = refused("import_segments", path, "--dataset", "imp", peak_mb=64)
    assert f"{path}:{BAD_LINE}: line longer than 65536 bytes" in msg
    assert state() == imp


# --- import_labels_json -----------------------------------------------------------------

GOOD_ITEMS = [
    {"wav": "/audio/Yexisting001.wav", "labels": f"{SPEECH},{MUSIC}"},
    {"wav": "newclip0001_5.000.wav", "labels": SIREN},
]
JSON_ITEM_CASES = {  # the third item is bad
    "not an object": ("just a string", 'item needs string fields "wav" and "labels"'),
    "labels missing": ({"wav": "newclip0002.wav"}, 'item needs string fields'),
    "labels not a string": ({"wav": "newclip0002.wav", "labels": [SPEECH]},
                            "item needs string fields"),
    "no youtube id": ({"wav": "../../etc/passwd", "labels": SPEECH},
                      "no YouTube id in file name 'passwd'"),
    "unknown mid": ({"wav": "newclip0002.wav", "labels": "/m/notamid"},
                    "unknown label '/m/notamid'"),
    "empty label": ({"wav": "newclip0002.wav", "labels": f"{SPEECH},,{DOG}"},
                    "empty label in the label list"),
    "duplicate item": ({"wav": "Ynewclip0001_5.000.wav", "labels": DOG},
                       "duplicate segment newclip0001 at 5.000"),
    "huge labels": ({"wav": "newclip0002.wav", "labels": ",".join([SPEECH] * 10_000)},
                    "line longer than 65536 bytes"),
    # A line break in the labels must not become a second CSV row (another clip).
    "line break in labels": (
        {"wav": "newclip0002.wav",
         "labels": f"{SPEECH}\ninjected001, 0, 10, {MUSIC}\ninjected002, 0, 10, {MUSIC}"},
        "line break"),
}


@pytest.mark.parametrize("case", JSON_ITEM_CASES)
def test_import_labels_json_refuses_a_bad_item_with_its_number(imp, tmp_path, case):
    bad, reason = JSON_ITEM_CASES[case]
    path = write(tmp_path, "bad.json", json.dumps({"data": [*GOOD_ITEMS, bad, GOOD_ITEMS[0]]}))
    msg = refused("import_labels_json", path, "--dataset", "imp")
    assert f"{path}:3: item 3: " in msg and reason in msg, msg
    assert state() == imp


def test_import_labels_json_line_break_cannot_inject_a_clip(imp, tmp_path, capsys):
    """With --skip-bad the smuggled rows are not imported and later items keep their
    numbers."""
    bad = JSON_ITEM_CASES["line break in labels"][0]
    unknown = {"wav": "newclip0003.wav", "labels": "/m/notamid"}
    path = write(tmp_path, "bad.json", json.dumps({"data": [*GOOD_ITEMS, bad, unknown]}))
    call_command("import_labels_json", str(path), "--dataset", "imp", "--skip-bad")
    err = capsys.readouterr().err
    assert not Clip.objects.filter(ytid__startswith="injected").exists()
    assert f"{path}: item 3: skipped:" in err and "line break" in err
    assert f"{path}: item 4: skipped: unknown label '/m/notamid'" in err
    assert sorted(Clip.objects.values_list("ytid", flat=True)) == [
        "existing001", "existing002", "newclip0001"]


JSON_FILE_CASES = {
    # The import streams: a good item 1 is read (and rolled back) before the error.
    "syntax error on line 3": (b'{"data": [\n  {"wav": "newclip0002.wav", "labels": "/m/09x0r"},'
                               b'\n  {oops}\n]}',
                               ":3: not valid JSON"),
    "truncated": (b'{"data": [{"wav": "newclip0002.wav", "labels": "/m/09x0r"}',
                  "not valid JSON"),
    "not UTF-8": (b'{"data": [{"wav": "\xff\xfe.wav", "labels": ""}]}', "not valid JSON"),
    "a list": (b"[1, 2, 3]", 'expected an object {"data": [...]}'),
    "data not a list": (b'{"data": {"wav": "x"}}', 'expected an object {"data": [...]}'),
    "nested too deep": (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                        "not valid JSON"),
    "empty file": (b"", "not valid JSON"),
}


@pytest.mark.parametrize("case", JSON_FILE_CASES)
def test_import_labels_json_refuses_a_bad_file(imp, tmp_path, case):
    data, reason = JSON_FILE_CASES[case]
    path = write(tmp_path, "bad.json", data)
    msg = refused("import_labels_json", path, "--dataset", "imp")
    assert reason in msg, msg
    assert state() == imp


# --- import_labelset --------------------------------------------------------------------

LABELSET_CSV_CASES = {
    "malformed": ("newclip0001, 5.000\n", "line 6: expected 4 fields"),
    "unknown mid": (f'existing002, 30.000, 40.000, "{DOG},/m/notamid"\n',
                    "line 6: unknown label '/m/notamid'"),
    "duplicate row": (f'existing001, 0.000, 10.000, "{DOG}"\n',
                      "line 6: clip existing001 at 0.000 s is already given by line 4"),
    "bad times": (f'existing002, 40.000, 30.000, "{DOG}"\n', "line 6: invalid segment times"),
}


@pytest.mark.parametrize("case", LABELSET_CSV_CASES)
@pytest.mark.parametrize("name", ["published", "another"])
def test_import_labelset_csv_refuses_a_bad_line(imp, tmp_path, case, name):
    """Into a new label set, and over the existing one (which must stay as it was)."""
    bad, reason = LABELSET_CSV_CASES[case]
    path = write(tmp_path, "set.csv", HEADER + GOOD_ROWS + bad)
    msg = refused("import_labelset", path, "--dataset", "imp", "--name", name)
    assert f"{path}: {reason}" in msg, msg
    assert state() == imp


LABELSET_JSON_CASES = {
    "item not an object": ([*GOOD_ITEMS, 42], "item 3: item needs string fields"),
    "unknown mid": ([*GOOD_ITEMS, {"wav": "existing002_30.wav", "labels": "/m/notamid"}],
                    "item 3: unknown label '/m/notamid'"),
    "duplicate item": ([*GOOD_ITEMS, {"wav": "Yexisting001.wav", "labels": DOG}],
                       "item 3: clip existing001 at 0.000 s is already given by item 1"),
    "no youtube id": ([*GOOD_ITEMS, {"wav": "<script>.wav", "labels": DOG}],
                      "item 3: no YouTube id in file name '<script>.wav'"),
    "not JSON": (b'{"data": [', "not valid JSON"),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "a list": ([1, 2], 'expected an object {"data": [...]}'),
}


@pytest.mark.parametrize("case", LABELSET_JSON_CASES)
def test_import_labelset_json_refuses_a_bad_item_or_file(imp, tmp_path, case):
    items, reason = LABELSET_JSON_CASES[case]
    data = items if isinstance(items, bytes) else json.dumps(
        items if not isinstance(items, list) or case == "a list" else {"data": items})
    path = write(tmp_path, "set.json", data)
    msg = refused("import_labelset", path, "--dataset", "imp", "--name", "published")
    assert f"{path}: {reason}" in msg, msg
    assert state() == imp


def test_import_labelset_unknown_dataset(imp, tmp_path):
    path = write(tmp_path, "set.csv", HEADER + GOOD_ROWS)
    msg = refused("import_labelset", path, "--dataset", "nope", "--name", "x")
    assert "no dataset named 'nope'" in msg
    assert state() == imp


@pytest.mark.slow
def test_import_labelset_one_gigabyte_line(imp, tmp_path):
    path = write_huge_line(tmp_path, "huge.csv", HEADER + GOOD_ROWS)
    msg = refused("import_labelset", path, "--dataset", "imp", "--name", "published",
                  peak_mb=64)
    assert f"{path}: line {BAD_LINE}: line longer than 65536 bytes" in msg
    assert state() == imp
