"""manage.py evaluate_predictions: mAP against scikit-learn on random data, a hand-made
case, the three ground truths, the .npy clip order, and the errors (with row numbers)."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.metrics import average_precision_score

from tests.curation.conftest import add_candidates, decide, label, make_clip, make_run
from tests.factories import DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db


def run_cmd(*args) -> str:
    out = io.StringIO()
    call_command("evaluate_predictions", *args, stdout=out)
    return out.getvalue()


def classes():
    from curation.evaluation import trainable_classes

    return trainable_classes()


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows, header=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        for r in rows:
            w.writerow(r)


@pytest.fixture
def hand_set(db):
    """Four clips. speech is original on h0 and h2, dog on h1. Predictions below rank
    speech: h0 0.9 (pos), h1 0.8, h2 0.7 (pos), h3 0.1 -> AP = (1/1 + 2/3) / 2 = 5/6;
    dog: h0 0.6, h1 0.5 (pos), others 0 -> AP = 1/2. mAP = (5/6 + 1/2) / 2 = 2/3."""
    ds = DatasetFactory(name="hand")
    clips = [
        make_clip(ds, "hhhhhhhhhh0", 0.0, 0, ["speech"]),
        make_clip(ds, "hhhhhhhhhh1", 0.0, 1, ["dog"]),
        make_clip(ds, "hhhhhhhhhh2", 0.0, 2, ["speech"]),
        make_clip(ds, "hhhhhhhhhh3", 0.0, 3, []),
    ]
    return ds, clips


def hand_scores():
    cls = classes()
    speech, dog = label("speech").index, label("dog").index
    scores = np.zeros((4, len(cls)))
    scores[:, speech] = [0.9, 0.8, 0.7, 0.1]
    scores[:, dog] = [0.6, 0.5, 0.0, 0.0]
    return scores


def test_hand_made_case_csv_and_per_class_file(hand_set, tmp_path):
    ds, clips = hand_set
    scores = hand_scores()
    pred = tmp_path / "pred.csv"
    write_csv(pred, [[c.ytid, *map(str, row)] for c, row in zip(clips, scores, strict=True)])
    out = tmp_path / "per_class.csv"
    text = run_cmd(str(pred), "--dataset", "hand", "--against", "original", "--out", str(out))
    assert "mAP 0.6667 over 2 classes and 4 clips" in text
    rows = list(read_rows(out))
    by_mid = {r["mid"]: r for r in rows}
    assert set(by_mid) == {label("speech").mid, label("dog").mid}
    assert float(by_mid[label("speech").mid]["ap"]) == pytest.approx(5 / 6, abs=1e-6)
    assert float(by_mid[label("dog").mid]["ap"]) == pytest.approx(0.5, abs=1e-6)
    assert by_mid[label("speech").mid]["positives"] == "2"
    assert by_mid[label("speech").mid]["name"] == "Speech"


def test_npy_in_clip_order_equals_csv(hand_set, tmp_path):
    ds, clips = hand_set
    order = tmp_path / "order.csv"
    text = run_cmd("--dataset", "hand", "--write-order", str(order))
    assert "4 clips" in text
    rows = list(read_rows(order))
    assert [r["ytid"] for r in rows] == [c.ytid for c in clips]
    assert [r["row"] for r in rows] == ["0", "1", "2", "3"]
    pred = tmp_path / "pred.npy"
    np.save(pred, hand_scores())
    assert "mAP 0.6667 over 2 classes and 4 clips" in run_cmd(str(pred), "--dataset", "hand")


def test_header_of_mids_picks_columns_in_any_order(hand_set, tmp_path):
    ds, clips = hand_set
    header = ["ytid", label("dog").mid, label("speech").mid]
    rows = [[c.ytid, d, s] for c, d, s in zip(clips, [0.6, 0.5, 0, 0], [0.9, 0.8, 0.7, 0.1],
                                              strict=True)]
    pred = tmp_path / "pred.csv"
    write_csv(pred, rows, header)
    assert "mAP 0.6667 over 2 classes and 4 clips" in run_cmd(str(pred), "--dataset", "hand")
    # Only the clips in the file count: drop h1 -> dog has no positive left, speech:
    # h0 0.9 pos, h2 0.7 pos, h3 0.1 -> AP 1.
    write_csv(pred, [rows[0], rows[2], rows[3]], header)
    assert "mAP 1.0000 over 1 classes and 3 clips" in run_cmd(str(pred), "--dataset", "hand")


def test_against_curated_and_run(hand_set, tmp_path):
    ds, clips = hand_set
    r1 = UserFactory(username="ev1")
    # Reviewers reject speech on h2 and accept dog on h3: curated speech = {h0},
    # dog = {h1, h3}. speech AP: h0 top -> 1. dog: h0 0.6 (neg), h1 0.5 (pos),
    # h2 0 and h3 0 tie (one pos, one neg): P@1 pos = 1/2, then at the tie 2/4 -> AP =
    # 0.5 * 1/2 + 0.5 * 2/4 = 0.5. mAP = 0.75.
    decide(clips[2], "speech", r1, "reject")
    decide(clips[3], "dog", r1, "accept")
    pred = tmp_path / "pred.npy"
    np.save(pred, hand_scores())
    assert "mAP 0.7500 over 2 classes and 4 clips" in run_cmd(
        str(pred), "--dataset", "hand", "--against", "curated")
    # A run keeping speech on h1 only (h0 filtered out): speech AP with h1 0.8 as the
    # only positive ranked second -> 1/2.
    run = make_run(ds, threshold=0.3)
    add_candidates(run, clips[1], {"speech": 0.4})
    add_candidates(run, clips[0], {"speech": 0.2})
    assert "mAP 0.5000 over 1 classes and 4 clips" in run_cmd(
        str(pred), "--dataset", "hand", "--against", f"run:{run.pk}")


@pytest.mark.parametrize("seed", range(3))
def test_random_data_matches_sklearn(db, tmp_path, seed):
    rng = random.Random(seed)
    ds = DatasetFactory(name=f"rnd{seed}")
    cls = classes()
    pool = [c.mid for c in cls[:12]]
    clips = []
    for i in range(60):
        clips.append(make_clip(ds, f"r{seed}_{i:08d}", 0.0, i,
                               rng.sample(pool, rng.randint(0, 3))))
    scores = np.round(np.array([[rng.random() for _ in cls] for _ in clips]),
                      rng.choice([2, 6]))
    pred = tmp_path / "pred.npy"
    np.save(pred, scores)
    out = tmp_path / "pc.csv"
    text = run_cmd(str(pred), "--dataset", ds.name, "--out", str(out))

    from relabel_app.models import ClipLabel

    truth = np.zeros_like(scores, dtype=int)
    row_of = {c.pk: i for i, c in enumerate(clips)}
    for clip_id, idx in ClipLabel.objects.filter(clip__dataset=ds).values_list(
            "clip_id", "label__index"):
        truth[row_of[clip_id], idx] = 1
    used = [j for j in range(len(cls)) if truth[:, j].any()]
    expected = np.mean([average_precision_score(truth[:, j], scores[:, j]) for j in used])
    assert f"mAP {expected:.4f} over {len(used)} classes and 60 clips" in text
    per_class = {int(r["index"]): float(r["ap"]) for r in read_rows(out)}
    assert sorted(per_class) == used
    for j in used:
        assert per_class[j] == pytest.approx(average_precision_score(truth[:, j], scores[:, j]),
                                             abs=1e-6)


# --- errors -----------------------------------------------------------------------------


def error_of(*args) -> str:
    with pytest.raises(CommandError) as e:
        run_cmd(*args)
    return str(e.value)


def test_csv_errors_name_the_row(hand_set, tmp_path):
    ds, clips = hand_set
    n = len(classes())
    good = [[c.ytid, *(["0.5"] * n)] for c in clips]
    pred = tmp_path / "pred.csv"

    write_csv(pred, [good[0], ["nosuchclip01", *(["0.5"] * n)]])
    assert "row 2: 'nosuchclip01' matches no clip of the dataset" in error_of(
        str(pred), "--dataset", "hand")

    write_csv(pred, [good[0], good[1], [clips[2].ytid, *(["0.5"] * (n - 1))]])
    assert f"row 3: {n - 1} scores, expected {n}" in error_of(str(pred), "--dataset", "hand")

    bad = list(good[1])
    bad[5] = "nan"
    write_csv(pred, [good[0], bad])
    assert "row 2, column 6: 'nan' is not a finite number" in error_of(
        str(pred), "--dataset", "hand")

    bad[5] = "high"
    write_csv(pred, [bad])
    assert "row 1, column 6: 'high' is not a number" in error_of(str(pred), "--dataset", "hand")

    write_csv(pred, [good[0], good[0]])
    assert "row 2: 'hhhhhhhhhh0' already scored on row 1" in error_of(
        str(pred), "--dataset", "hand")

    write_csv(pred, [["=cmd|x", "0.5"]], header=["ytid", "/m/notaclass"])
    assert "row 1, column 2: '/m/notaclass' is not one of the 527" in error_of(
        str(pred), "--dataset", "hand")


def test_npy_errors(hand_set, tmp_path):
    pred = tmp_path / "pred.npy"
    np.save(pred, np.zeros((3, 527)))
    assert "3 rows, but the dataset has 4 clips" in error_of(str(pred), "--dataset", "hand")
    np.save(pred, np.zeros((4, 526)))
    assert "shape (4, 526): expected (clips, 527)" in error_of(str(pred), "--dataset", "hand")
    scores = hand_scores()
    scores[2, 7] = np.nan
    np.save(pred, scores)
    assert "row 2 (0-based, clip 'hhhhhhhhhh2'), column 7: NaN" in error_of(
        str(pred), "--dataset", "hand")
    pred.write_bytes(b"not numpy at all")
    assert "not a readable .npy array" in error_of(str(pred), "--dataset", "hand")


def test_argument_errors(hand_set, tmp_path):
    pred = tmp_path / "pred.npy"
    np.save(pred, hand_scores())
    assert "no dataset named 'nope'" in error_of(str(pred), "--dataset", "nope")
    assert "use original, curated or run:ID" in error_of(
        str(pred), "--dataset", "hand", "--against", "gold")
    assert "no run 999999 in dataset 'hand'" in error_of(
        str(pred), "--dataset", "hand", "--against", "run:999999")
    assert "no such file" in error_of(str(tmp_path / "missing.csv"), "--dataset", "hand")
