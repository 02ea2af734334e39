"""Stage 2: free-form sound labels from the caption summary (pipeline.stages.predict);
best-of-N asks N times and keeps every attempt (the filter stage chooses): attempt 1
greedy, attempts 2..N sampled with a seed per (run, clip, attempt), stored with the
attempt. Every clip's attempts of the chunk go through batched model calls."""

from __future__ import annotations

import dataclasses

from pipeline import stage_declarations
from pipeline.stages.predict import run_predict_best_of_n

from .registry import Item, Stage


class PredictStage(stage_declarations.Predict, Stage):
    def setup(self) -> None:
        self.chat = self.backend("text_chat")
        self.attempts = max(1, int(self.run.filter_config.best_of_n))

    def prepare(self, chunk):
        return [Item(row, row.summary) for row in chunk]

    def call(self, items):
        outs = run_predict_best_of_n(
            self.chat,
            [(item.data, (self.run.pk, item.row.clip_id)) for item in items],
            self.config,
            self.attempts,
        )
        return [o if isinstance(o, Exception) else [dataclasses.asdict(a) for a in o]
                for o in outs]

    def write(self, results):
        for item, attempts in results:
            if not any(a["ok"] for a in attempts):
                # Keep the raw answers with the failure, so a reviewer can see what was said.
                self.fail(item.row, attempts[-1].get("error") or "answer parsed to no labels",
                          predict={"attempts": attempts})
                continue
            self.save(item.row, self.done(
                item.row, predict={"attempts": attempts},
                free_labels=[a["labels"] for a in attempts],
            ))
