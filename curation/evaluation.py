"""Evaluate a classifier's predictions (527 scores per clip, the AudioSet class order) against
a dataset's labels: the original ones, the curated set, or a run's kept candidates.

The metric is the paper's: mean over the classes with at least one positive among the
evaluated clips of the average precision (curation.metrics.average_precision, the same
definition as scikit-learn's ``average_precision_score``).

Predictions come as
* a CSV: ``ytid`` then 527 scores in class-index order (no header), or a header row
  ``ytid,<mid>,<mid>,...`` naming each column's class (any order, any subset of the 527);
* a ``.npy`` array of shape (clips, 527) whose rows follow the dataset's clip order
  (``clip_order``; ``evaluate_predictions --write-order PATH`` writes it).

Bad input stops with the row number and nothing else happens (PredictionError).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from relabel_app.csv_safety import spreadsheet_safe
from relabel_app.models import Clip, Dataset, Label

from . import metrics
from .models import Policy
from .resolution import Scope, T, curated_ctes

CSV_ORDER_HEADER = ["row", "ytid", "start_s", "end_s"]


class PredictionError(Exception):
    """The predictions file cannot be evaluated; the message names the row."""


@dataclass
class ClassAP:
    index: int
    mid: str
    name: str
    positives: int
    ap: float


@dataclass
class Evaluation:
    map: float | None
    classes: int  # classes with at least one positive (the mean runs over them)
    clips: int
    against: str
    per_class: list[ClassAP] = field(default_factory=list)


@dataclass(frozen=True)
class OrderedClip:
    id: int
    ytid: str
    start_s: float
    end_s: float


def clip_order(dataset: Dataset) -> list[OrderedClip]:
    """The dataset's clips in the order a .npy file's rows follow: import position, then id."""
    return [OrderedClip(*row) for row in
            Clip.objects.filter(dataset=dataset).order_by("position", "id")
            .values_list("id", "ytid", "start_s", "end_s")]


def write_clip_order(dataset: Dataset, path: Path) -> int:
    """Write the clip order as CSV (row, ytid, start_s, end_s); returns the number of clips."""
    clips = clip_order(dataset)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_ORDER_HEADER)
        for i, c in enumerate(clips):
            w.writerow([i, spreadsheet_safe(c.ytid), f"{c.start_s:g}", f"{c.end_s:g}"])
    return len(clips)


def trainable_classes() -> list[Label]:
    """The 527 trainable classes in index order (a model's output order)."""
    return list(Label.objects.filter(index__isnull=False).order_by("index"))


# --- reading predictions ----------------------------------------------------------------


def _float(cell: str, row: int, col: int) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise PredictionError(f"row {row}, column {col + 1}: {cell[:40]!r} is not a number") from None
    if math.isnan(v) or math.isinf(v):
        raise PredictionError(f"row {row}, column {col + 1}: {cell[:40]!r} is not a finite number")
    return v


def _read_csv(path: Path, clips: list[OrderedClip], classes: list[Label]
              ) -> tuple[list[int], list[list[float]], list[Label]]:
    """(clip ids, score rows, the classes of the columns). Row numbers are the file's line
    numbers, 1-based, header included."""
    by_ytid: dict[str, list[int]] = {}
    for c in clips:
        by_ytid.setdefault(c.ytid, []).append(c.id)
    by_mid = {label.mid: label for label in classes}
    columns: list[Label] = classes
    clip_ids: list[int] = []
    rows: list[list[float]] = []
    seen: dict[int, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line_no, cells in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in cells]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if not rows and not clip_ids and len(cells) > 1 and (
                cells[1].startswith(("/m/", "/t/")) or cells[0].lower() in ("ytid", "# ytid")
            ):
                columns = []
                for col, mid in enumerate(cells[1:], start=1):
                    label = by_mid.get(mid)
                    if label is None:
                        raise PredictionError(
                            f"row {line_no}, column {col + 1}: {mid[:40]!r} is not one of the "
                            "527 trainable classes")
                    if label in columns:
                        raise PredictionError(f"row {line_no}: class {mid} appears twice")
                    columns.append(label)
                continue
            if len(cells) != len(columns) + 1:
                raise PredictionError(
                    f"row {line_no}: {len(cells) - 1} scores, expected {len(columns)} "
                    "(a ytid, then one score per class)")
            ytid = cells[0]
            ids = by_ytid.get(ytid)
            if not ids:
                raise PredictionError(f"row {line_no}: {ytid[:64]!r} matches no clip of the dataset")
            if len(ids) > 1:
                raise PredictionError(
                    f"row {line_no}: {ytid[:64]!r} names {len(ids)} clips of the dataset; "
                    "use the .npy format in the dataset's clip order (--write-order)")
            if ids[0] in seen:
                raise PredictionError(
                    f"row {line_no}: {ytid[:64]!r} already scored on row {seen[ids[0]]}")
            seen[ids[0]] = line_no
            clip_ids.append(ids[0])
            rows.append([_float(cell, line_no, col) for col, cell in enumerate(cells[1:], start=1)])
    if not rows:
        raise PredictionError("no prediction rows")
    return clip_ids, rows, columns


def _read_npy(path: Path, clips: list[OrderedClip], classes: list[Label]
              ) -> tuple[list[int], list[list[float]], list[Label]]:
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PredictionError(f"not a readable .npy array: {e}") from None
    if arr.ndim != 2 or arr.shape[1] != len(classes):
        raise PredictionError(
            f"array of shape {tuple(arr.shape)}: expected (clips, {len(classes)})")
    if arr.shape[0] != len(clips):
        raise PredictionError(
            f"{arr.shape[0]} rows, but the dataset has {len(clips)} clips: a .npy file has one "
            "row per clip in the dataset's clip order (--write-order PATH writes it)")
    if not np.issubdtype(arr.dtype, np.number):
        raise PredictionError(f"array of dtype {arr.dtype}: expected numbers")
    bad = ~np.isfinite(arr.astype(np.float64))
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise PredictionError(
            f"row {r} (0-based, clip {clips[r].ytid!r}), column {c}: NaN or infinite score")
    return [c.id for c in clips], arr.astype(np.float64).tolist(), classes


def read_predictions(path: Path, dataset: Dataset
                     ) -> tuple[list[int], list[list[float]], list[Label]]:
    """(clip ids, score rows, column classes) of a .csv or .npy predictions file."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: no such file")
    clips = clip_order(dataset)
    if not clips:
        raise PredictionError(f"dataset {dataset.name!r} has no clips")
    classes = trainable_classes()
    if path.suffix.lower() == ".npy":
        return _read_npy(path, clips, classes)
    try:
        return _read_csv(path, clips, classes)
    except UnicodeDecodeError as e:
        raise PredictionError(f"not UTF-8 text (a CSV) nor a .npy file: {e}") from None


# --- ground truth -----------------------------------------------------------------------


def _positive_pairs(dataset: Dataset, against: str) -> set[tuple[int, int]]:
    """(clip_id, label_id) pairs that are positives under ``against``:
    ``original`` (the dataset's own labels), ``curated`` (the curated set, keep-original
    policy, the export's rules) or ``run:ID`` (the run's selected, kept candidates)."""
    scope = Scope(dataset_id=dataset.pk)
    with connection.cursor() as cur:
        if against == "original":
            cur.execute(f"""SELECT cl.clip_id, cl.label_id FROM {T.cliplabel} cl
                            JOIN {T.clip} c ON c.id = cl.clip_id
                            WHERE c.dataset_id = %(dataset_id)s""", scope.params())
        elif against == "curated":
            cur.execute(curated_ctes(scope, Policy.KEEP_ORIGINAL)
                        + " SELECT clip_id, label_id FROM curated", scope.params())
        elif against.startswith("run:"):
            run_id = int(against[4:])
            cur.execute(f"""SELECT DISTINCT k.clip_id, k.label_id FROM {T.candidate} k
                            JOIN {T.clip} c ON c.id = k.clip_id
                            WHERE k.run_id = %(run)s AND k.selected AND k.kept
                              AND c.dataset_id = %(ds)s""", {"run": run_id, "ds": dataset.pk})
        else:
            raise ValueError(f"unknown ground truth {against!r}")
        return set(cur.fetchall())


def evaluate(*, dataset: Dataset, clip_ids: Sequence[int], scores: Sequence[Sequence[float]],
             columns: Sequence[Label], against: str) -> Evaluation:
    """mAP of ``scores`` (one row per clip of ``clip_ids``, one column per class of
    ``columns``) against the positives of ``against`` on those clips."""
    by_label: dict[int, set[int]] = {}
    for clip_id, label_id in _positive_pairs(dataset, against):
        by_label.setdefault(label_id, set()).add(clip_id)
    per_class = []
    for j, label in enumerate(columns):
        pos = by_label.get(label.pk)
        if not pos:
            continue
        y = [1 if cid in pos else 0 for cid in clip_ids]
        if not any(y):
            continue
        ap = metrics.average_precision(y, [row[j] for row in scores])
        per_class.append(ClassAP(index=label.index, mid=label.mid, name=label.name,
                                 positives=sum(y), ap=ap))
    mean = sum(c.ap for c in per_class) / len(per_class) if per_class else None
    return Evaluation(map=mean, classes=len(per_class), clips=len(clip_ids), against=against,
                      per_class=per_class)


def write_per_class(evaluation: Evaluation, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "name", "positives", "ap"])
        for c in evaluation.per_class:
            w.writerow([c.index, c.mid, spreadsheet_safe(c.name), c.positives, f"{c.ap:.6f}"])
