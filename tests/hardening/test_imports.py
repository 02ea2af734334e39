"""Issue 12 import quirks, each as the file an attacker or a spreadsheet would hand in:
a CSV or JSON starting with a UTF-8 BOM is accepted; an import that fails leaves nothing
behind (no empty dataset); a 16 MB JSON import streams (its Python memory peak was 327 MB
when the whole file was loaded)."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from django.core.management import CommandError, call_command

from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, Dataset

pytestmark = pytest.mark.django_db

BOM = b"\xef\xbb\xbf"
SPEECH, DOG, MUSIC = "/m/09x0r", "/m/0bt9lr", "/m/04rlf"
SEGMENTS = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=2, num_segs=2, num_positive_labels=3, num_unique_labels=3\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    f'bomclip0001, 0.000, 10.000, "{SPEECH},{DOG}"\n'
    f'bomclip0002, 30.000, 40.000, "{MUSIC}"\n'
)
ITEMS = {"data": [{"wav": "Ybomclip0001.wav", "labels": f"{SPEECH},{DOG}"},
                  {"wav": "bomclip0002_30.000.wav", "labels": MUSIC}]}


def _write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_segments_csv_with_a_bom_is_imported(tmp_path):
    path = _write(tmp_path, "bom.csv", BOM + SEGMENTS.encode())
    out = io.StringIO()
    err = io.StringIO()
    call_command("import_segments", str(path), "--dataset", "bomcsv", stdout=out, stderr=err)
    clips = Clip.objects.filter(dataset__name="bomcsv").order_by("position")
    assert [(c.ytid, c.start_s) for c in clips] == [("bomclip0001", 0.0), ("bomclip0002", 30.0)]
    assert sorted(clips[0].labels.values_list("mid", flat=True)) == sorted([SPEECH, DOG])
    assert "warning" not in err.getvalue()  # the header line was read as a header


def test_labels_json_with_a_bom_is_imported(tmp_path):
    path = _write(tmp_path, "bom.json", BOM + json.dumps(ITEMS).encode())
    call_command("import_labels_json", str(path), "--dataset", "bomjson", stdout=io.StringIO())
    assert sorted(Clip.objects.filter(dataset__name="bomjson").values_list("ytid", "start_s")) \
        == [("bomclip0001", 0.0), ("bomclip0002", 30.0)]


@pytest.mark.parametrize("suffix,body", [
    (".json", BOM + json.dumps(ITEMS).encode()),
    (".csv", BOM + SEGMENTS.encode()),
    (".labels", BOM + json.dumps(ITEMS).encode()),  # format sniffed past the BOM
])
def test_labelset_with_a_bom_is_imported(tmp_path, suffix, body):
    call_command("import_segments", str(_write(tmp_path, "s.csv", SEGMENTS.encode())),
                 "--dataset", "bomset", stdout=io.StringIO())
    path = _write(tmp_path, "set" + suffix, body)
    call_command("import_labelset", str(path), "--dataset", "bomset", "--name", "pub",
                 stdout=io.StringIO(), stderr=io.StringIO())
    run = PipelineRun.objects.get(profile_name="pub")
    assert Candidate.objects.filter(run=run).count() == 3
    assert run.config["bytes"] == len(body)  # hashed and counted while streaming


@pytest.mark.parametrize("body,args", [
    # A bad item after a good one.
    (json.dumps({"data": [ITEMS["data"][0], {"wav": "x.wav", "labels": SPEECH}]}), []),
    # Broken JSON after good items (read, then rolled back).
    (json.dumps(ITEMS)[:-3], []),
    # Every item bad, skipped: nothing usable, so nothing at all.
    (json.dumps({"data": [{"wav": "x.wav", "labels": SPEECH}, 42]}), ["--skip-bad"]),
    (json.dumps({"data": []}), []),
])
def test_a_failed_json_import_creates_no_dataset(tmp_path, body, args):
    path = _write(tmp_path, "bad.json", body.encode())
    before = (Dataset.objects.count(), Clip.objects.count())
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_labels_json", str(path), "--dataset", "neverthere", *args,
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert not Dataset.objects.filter(name="neverthere").exists()
    assert (Dataset.objects.count(), Clip.objects.count()) == before


def test_a_failed_csv_import_with_every_row_skipped_creates_no_dataset(tmp_path):
    path = _write(tmp_path, "bad.csv", b"# a\n# b\n# c\nnot a row\n")
    with pytest.raises(CommandError, match="was not created"):
        call_command("import_segments", str(path), "--dataset", "neverthere2", "--skip-bad",
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert not Dataset.objects.filter(name="neverthere2").exists()


def _big_json(path, target_bytes: int) -> int:
    """A realistic {"data": [...]} file of about ``target_bytes``; returns the item count."""
    mids = [SPEECH, DOG, MUSIC, "/m/05tny_", "/m/03kmc9"]
    n = 0
    with open(path, "w") as f:
        f.write('{"data": [\n')
        size = 0
        while size < target_bytes:
            item = json.dumps({"wav": f"/data/audioset/balanced_train/Y{n:011d}_{n % 300}.000.wav",
                               "labels": ",".join(mids[n % 5: n % 5 + 2] or mids[:2])})
            line = ("," if n else "") + item + "\n"
            f.write(line)
            size += len(line)
            n += 1
        f.write("]}\n")
    return n


@pytest.mark.slow
def test_a_16_mb_json_import_streams(tmp_path):
    path = tmp_path / "big.json"
    n = _big_json(path, 16 * 2**20)
    size_mb = path.stat().st_size / 2**20
    tracemalloc.start()
    try:
        call_command("import_labels_json", str(path), "--dataset", "bigjson",
                     stdout=io.StringIO())
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert Clip.objects.filter(dataset__name="bigjson").count() == n
    print(f"16 MB JSON import: {n} items, {size_mb:.1f} MB, Python peak {peak_mb:.1f} MB")
    # Whole-file loading peaked at 327 MB (20x the file); streaming keeps what the
    # importer itself holds per clip (ids, the duplicate check), well below the file size.
    assert peak_mb < 3 * size_mb, peak_mb
