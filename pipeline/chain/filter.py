"""Stage 4: CLAP cosine between each clip's audio and its candidates' class texts
(pipeline.stages.filter); keep those at or above the threshold; best-of-N picks the
attempt with the best scores. The chunk's audio is embedded in one batch. The same audio
embedding also scores every original label of the clip (OriginalLabelScore: evidence for
reviewers and audits, never a candidate)."""

from __future__ import annotations

from django.db import transaction

from pipeline import stage_declarations
from pipeline.embeddings import embeddings_save
from pipeline.models import Candidate, OriginalLabelScore
from pipeline.stage_io import class_text_cache, load_clip_audio
from pipeline.stages.filter import (
    best_of_n,
    filter_candidates,
    original_label_scores,
)
from pipeline.stages.match import Candidate as StageCandidate
from relabel_app.models import ClipLabel, Label

from .registry import Item, Stage


class FilterStage(stage_declarations.Filter, Stage):
    def setup(self) -> None:
        self.clap = self.backend("clap")
        self.threshold = float(self.config.threshold)
        self.cache = class_text_cache()

    def prepare(self, chunk):
        items = []
        for row in chunk:
            try:
                items.append(Item(row, load_clip_audio(row.clip, self.clap.sample_rate)))
            except Exception as e:
                self.fail(row, e)
        return items

    def call(self, items):
        self.cache.matrix(self.clap)  # the class texts, once per model
        return list(self.clap.embed_audio([item.data for item in items]))

    def write(self, results):
        mid_of = dict(Label.objects.filter(index__isnull=False).values_list("id", "mid"))
        label_id_of = {m: i for i, m in mid_of.items()}
        clip_ids = [i.row.clip_id for i, _ in results]
        by_clip: dict[int, list] = {}
        for c in Candidate.objects.filter(run_id=self.run.pk, clip_id__in=clip_ids):
            by_clip.setdefault(c.clip_id, []).append(c)
        originals: dict[int, list[str]] = {}
        for clip_id, label_id in ClipLabel.objects.filter(clip_id__in=clip_ids).values_list(
            "clip_id", "label_id"
        ):
            if label_id in mid_of:  # a trainable class: one with a cached class text
                originals.setdefault(clip_id, []).append(mid_of[label_id])
        # The chunk's original-label scores in one statement, before the clips' writes: a
        # worker that dies in between leaves the clips pending, and the rerun writes the
        # same values again (the same model, the same audio), so nothing is lost or doubled.
        self._save_original_scores([
            (item.row, mid, score)
            for item, audio_emb in results
            for mid, score in original_label_scores(
                self.cache, self.clap, audio_emb, originals.get(item.row.clip_id, [])
            ).items()
        ], label_id_of)
        # The clips' audio embeddings for search (pipeline.embeddings), same reasoning.
        embeddings_save(spec=self.run.config["backends"]["clap"], random_weights=self.run.random_weights,
                        vectors=[(item.row.clip_id, emb) for item, emb in results])
        for item, audio_emb in results:
            row = item.row
            cands = by_clip.get(row.clip_id, [])
            scores = self.cache.scores(self.clap, audio_emb, [mid_of[c.label_id] for c in cands])
            by_attempt: dict[int, list] = {}
            for c in cands:
                c.clap_score = round(scores[mid_of[c.label_id]], 6)
                c.kept = c.clap_score >= self.threshold
                by_attempt.setdefault(c.attempt, []).append(c)
            attempts = [
                filter_candidates(
                    [StageCandidate(mid=mid_of[c.label_id], tier=c.tier, phrase=c.phrase,
                                    score=c.match_score) for c in by_attempt.get(a, [])],
                    scores, self.threshold)
                for a in range(len(row.free_labels or []) or 1)
            ]
            best = best_of_n(attempts)
            for c in cands:
                c.selected = c.attempt == best
            with transaction.atomic():
                if self.save(row, self.done(row, best_attempt=best)) and cands:
                    Candidate.objects.bulk_update(cands, ["clap_score", "kept", "selected"])

    @staticmethod
    def _save_original_scores(rows: list, label_id_of: dict) -> None:
        """One OriginalLabelScore per (clip, original label) scored; a row that exists
        already (a redelivered message, a rerun) gets the new score: one
        INSERT ... ON CONFLICT DO UPDATE for the chunk."""
        if rows:
            OriginalLabelScore.objects.bulk_create(
                [OriginalLabelScore(run_id=row.run_id, clip_id=row.clip_id,
                                    label_id=label_id_of[mid], clap_score=score)
                 for row, mid, score in rows],
                update_conflicts=True, unique_fields=["run", "clip", "label"],
                update_fields=["clap_score"],
            )
