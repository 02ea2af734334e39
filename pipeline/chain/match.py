"""Stage 3: map every attempt's free-form labels onto the 527 trainable classes
(pipeline.stages.match: exact, fuzzy, synonym tiers, or an LLM tier validated against the
ontology). Writes the candidates; attempt 0 is selected until the filter stage chooses."""

from __future__ import annotations

from pipeline import stage_declarations
from pipeline.models import Candidate
from pipeline.stage_io import label_index, trainable_ids_by_mid
from pipeline.stages.match import (
    build_llm_match_messages,
    match_labels,
    parse_llm_matches,
)

from .registry import Item, Stage


class MatchStage(stage_declarations.Match, Stage):
    def setup(self) -> None:
        embedder = self.backend("text_embedder") if self.config.use_synonym else None
        self.index = label_index(embedder)
        self.llm = self.backend("match_llm") if self.run.config["match"].get("use_llm") else None
        self.mid_ids = trainable_ids_by_mid()

    def prepare(self, chunk):
        return [Item(row, row.free_labels or []) for row in chunk]

    def _match(self, phrases):
        if self.llm is not None:
            return parse_llm_matches(
                self.llm.chat(build_llm_match_messages(phrases, self.index.classes)), self.index)
        return match_labels(phrases, self.index, self.config)

    def call(self, items):
        outputs = []
        for item in items:
            try:
                outputs.append([self._match(phrases) for phrases in item.data])
            except Exception as e:
                outputs.append(e)
        return outputs

    def write(self, results):
        for item, per_attempt in results:
            row = item.row
            cands = [
                Candidate(run_id=row.run_id, clip_id=row.clip_id, label_id=self.mid_ids[m.mid],
                          attempt=attempt, tier=m.tier, phrase=(m.phrase or "")[:200],
                          match_score=m.score, selected=(attempt == 0))
                for attempt, matched in enumerate(per_attempt) for m in matched
            ]
            self.save(row, self.done(row), cands, replace_candidates=True)
