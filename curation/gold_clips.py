"""Writes of gold clips: made from a clip's adjudications, imported from a segments CSV,
removed; and a dataset's gold settings (serving rate, floor). Reviewers' accuracy on
them is read in curation.gold."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import require_curator

from .models import Adjudication, AdjudicationVerdict


def _require_curator(user) -> None:
    require_curator(user, "Only curators adjudicate and export.")


class GoldError(ValueError):
    """A gold clip cannot be made or imported; the message says why."""


@transaction.atomic
def gold_make_from_adjudications(*, clip: Clip, curator) -> int:
    """"Make gold": the clip's adjudicated labels become its gold answers (accept =
    present, reject = absent), replacing earlier answers. Returns the number of answers."""
    from review.models import GoldClip, GoldLabel

    _require_curator(curator)
    adjudications = list(Adjudication.objects.filter(clip=clip).values_list("label_id",
                                                                              "verdict"))
    if not adjudications:
        raise GoldError("This clip has no adjudicated labels: adjudicate its labels first.")
    gold, _ = GoldClip.objects.update_or_create(
        clip=clip, defaults={"dataset_id": clip.dataset_id, "created_by": curator,
                             "source": GoldClip.Source.ADJUDICATED, "complete": False},
    )
    GoldLabel.objects.filter(clip=clip).delete()
    GoldLabel.objects.bulk_create([
        GoldLabel(gold=gold, clip=clip, label_id=label_id,
                  present=verdict == AdjudicationVerdict.ACCEPT)
        for label_id, verdict in adjudications
    ])
    return len(adjudications)


@transaction.atomic
def gold_remove(*, clip: Clip, curator) -> bool:
    from review.models import GoldClip

    _require_curator(curator)
    deleted, _ = GoldClip.objects.filter(clip=clip).delete()
    return bool(deleted)


def gold_import_segments(*, path: str | Path, dataset: Dataset, user=None) -> dict:
    """Gold answers from a segments CSV (three ``#`` lines, then ``YTID, start, end,
    "mid,mid"``): each row's clip becomes a *complete* gold clip whose listed labels are
    present and every other label absent. One transaction: a malformed row, an unknown
    MID or a row matching no clip of the dataset stops it with the line number and
    nothing is written."""
    from relabel_app.segment_import import iter_lines, parse_segment_line
    from review.models import GoldClip, GoldLabel

    label_ids = dict(Label.objects.values_list("mid", "id"))
    clips = {}
    rows: list[tuple[int, int, list[int]]] = []
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise GoldError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        for lineno, line in iter_lines(f):
            if line is None:
                raise GoldError(f"{path}: line {lineno}: line too long")
            text = line.strip()
            if not text or text.startswith(b"#"):
                continue
            try:
                ytid, start, _end, mids = parse_segment_line(text)
            except ValueError as e:
                raise GoldError(f"{path}: line {lineno}: {e}") from None
            ids = []
            for mid in mids:
                lid = label_ids.get(mid.decode(errors="replace"))
                if lid is None:
                    raise GoldError(f"{path}: line {lineno}: unknown label "
                                    f"{mid[:80].decode(errors='replace')!r}")
                ids.append(lid)
            rows.append((lineno, ytid.decode(), start, ids))
    if not rows:
        raise GoldError(f"{path}: no segment rows")
    ytids = {r[1] for r in rows}
    for c in Clip.objects.filter(dataset=dataset, ytid__in=ytids).only("id", "ytid", "start_s"):
        clips.setdefault(c.ytid, []).append(c)
    matched: list[tuple[Clip, list[int]]] = []
    for lineno, ytid, start, ids in rows:
        clip = next((c for c in clips.get(ytid, []) if abs(c.start_s - start) < 0.0015), None)
        if clip is None:
            raise GoldError(f"{path}: line {lineno}: {ytid} at {start:.3f} s is not a clip of "
                            f"dataset {dataset.name!r}")
        matched.append((clip, ids))
    with transaction.atomic():
        GoldLabel.objects.filter(clip__in=[c for c, _ in matched]).delete()
        GoldClip.objects.filter(clip__in=[c for c, _ in matched]).delete()
        golds = GoldClip.objects.bulk_create([
            GoldClip(dataset=dataset, clip=c, source=GoldClip.Source.IMPORTED, complete=True,
                     created_by=user) for c, _ in matched
        ])
        GoldLabel.objects.bulk_create([
            GoldLabel(gold=g, clip=c, label_id=lid, present=True)
            for g, (c, ids) in zip(golds, matched, strict=True) for lid in dict.fromkeys(ids)
        ])
    return {"clips": len(matched), "labels": sum(len(set(ids)) for _, ids in matched)}


@transaction.atomic
def dataset_gold_settings_update(*, dataset: Dataset, gold_rate: float,
                                 gold_floor: float | None, gold_exclude_flagged: bool,
                                 user) -> Dataset:
    """A curator's gold settings for a dataset: the serving rate, the floor that flags a
    reviewer, and whether flagged reviewers' votes leave the majority."""
    _require_curator(user)
    if not 0.0 <= gold_rate <= 1.0:
        raise GoldError("the gold rate must be between 0 and 1")
    if gold_floor is not None and not 0.0 <= gold_floor <= 1.0:
        raise GoldError("the floor must be between 0 and 1")
    dataset.gold_rate, dataset.gold_floor = gold_rate, gold_floor
    dataset.gold_exclude_flagged = gold_exclude_flagged
    dataset.save(update_fields=["gold_rate", "gold_floor", "gold_exclude_flagged"])
    return dataset
