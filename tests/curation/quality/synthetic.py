"""A synthetic dataset whose truth is known, built in bulk, and an oracle that answers a
study through the same services the study screen uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curation.quality.answers import (
    quality_answers_record,
    quality_classes_add,
    quality_clips_done,
)
from curation.quality.models import QualityQuestion, QualityRecallClip
from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset, Label


@dataclass
class Truth:
    dataset: Dataset
    labels: list[Label]
    # (clip id, label id) -> present, for every pair a source carries
    present: dict[tuple[int, int], bool] = field(default_factory=dict)
    # clip id -> label ids truly present that no source has
    missing: dict[int, list[int]] = field(default_factory=dict)
    run: PipelineRun | None = None
    source_pairs: dict[str, set[tuple[int, int]]] = field(default_factory=dict)

    def precision(self, source: str, label_id: int | None = None) -> float:
        pairs = [p for p in self.source_pairs[source] if label_id is None or p[1] == label_id]
        return sum(self.present[p] for p in pairs) / len(pairs)

    def recall(self, source: str) -> float:
        true_all = {p for p, v in self.present.items() if v}
        true_all |= {(c, lab) for c, labs in self.missing.items() for lab in labs}
        return len(true_all & self.source_pairs[source]) / len(true_all)


def build(*, name: str, sizes: list[int], rates: list[float], n_clips: int,
          missing_rate: float = 0.0, run_of: dict[int, tuple[int, float]] | None = None,
          seed: int = 7) -> Truth:
    """Classes k = 0.. get sizes[k] original labels on random clips, each right with
    probability rates[k]. ``missing_rate``: chance that a clip has one more true class no
    source carries. ``run_of``: class k -> (size, rate) of a run source's labels."""
    rng = np.random.default_rng(seed)
    ds = Dataset.objects.create(name=name)
    Clip.objects.bulk_create([Clip(dataset=ds, ytid=f"s{seed}-{i:06d}", start_s=0, end_s=10,
                                   position=i) for i in range(n_clips)], batch_size=5000)
    clip_ids = list(Clip.objects.filter(dataset=ds).order_by("position").values_list("id", flat=True))
    n_cls = len(sizes) + (2 if missing_rate else 0)
    labels = list(Label.objects.filter(index__isnull=False).order_by("index")[10:10 + n_cls])
    t = Truth(ds, labels)
    orig: list[ClipLabel] = []
    t.source_pairs["original"] = set()
    for k, (size, rate) in enumerate(zip(sizes, rates, strict=True)):
        chosen = rng.choice(n_clips, size=size, replace=False)
        right = rng.random(size) < rate
        for ci, ok in zip(chosen, right, strict=True):
            pair = (clip_ids[ci], labels[k].pk)
            t.present[pair] = bool(ok)
            t.source_pairs["original"].add(pair)
            orig.append(ClipLabel(clip_id=pair[0], label_id=pair[1]))
    ClipLabel.objects.bulk_create(orig, batch_size=5000)
    if run_of:
        run = PipelineRun.objects.create(dataset=ds, kind=PipelineRun.Kind.EXTERNAL,
                                         profile_name="external", status="done")
        t.run = run
        key = f"run:{run.pk}"
        t.source_pairs[key] = set()
        cands = []
        for k, (size, rate) in run_of.items():
            chosen = rng.choice(n_clips, size=size, replace=False)
            for ci in chosen:
                pair = (clip_ids[ci], labels[k].pk)
                if pair not in t.present:
                    t.present[pair] = bool(rng.random() < rate)
                t.source_pairs[key].add(pair)
                cands.append(Candidate(run=run, clip_id=pair[0], label_id=pair[1],
                                       tier="external", kept=True, selected=True))
        Candidate.objects.bulk_create(cands, batch_size=5000)
    if missing_rate:
        extra = labels[len(sizes):]
        for ci in np.nonzero(rng.random(n_clips) < missing_rate)[0]:
            t.missing[clip_ids[ci]] = [extra[int(rng.integers(0, len(extra)))].pk]
    return t


def oracle_answer(study, truth: Truth, reviewer) -> None:
    """Answer every question as the truth says, add every missing class on the recall
    clips, finish the recall clips: the services the screen calls."""
    qs = list(QualityQuestion.objects.filter(study=study).values_list("id", "clip_id", "label_id"))
    quality_answers_record(study=study, reviewer=reviewer, answers=[
        (qid, "accept" if truth.present.get((c, lab), lab in truth.missing.get(c, ())) else "reject")
        for qid, c, lab in qs])
    labels = {lab.pk: lab for lab in truth.labels}
    recall = [rc.clip for rc in QualityRecallClip.objects.filter(study=study).select_related("clip")]
    quality_classes_add(study=study, reviewer=reviewer, additions=[
        (clip, labels[lab]) for clip in recall for lab in truth.missing.get(clip.pk, [])])
    quality_clips_done(study=study, clips=recall, reviewer=reviewer)
