"""Stage 2: free-form sound labels from the caption summary (pipeline.stages.predict);
best-of-N asks N times and keeps every attempt (the filter stage chooses)."""

from __future__ import annotations

import dataclasses

from pipeline.stages.predict import PredictConfig, run_predict

from .registry import Item, Stage


class PredictStage(Stage):
    name = "predict"
    queue = "llm"
    config_class = PredictConfig
    backends = ("text_chat",)

    def setup(self) -> None:
        self.chat = self.backend("text_chat")
        self.attempts = max(1, int(self.run.config["filter"].get("best_of_n", 1)))

    def prepare(self, chunk):
        return [Item(row, row.summary) for row in chunk]

    def call(self, items):
        outputs = []
        for item in items:
            try:
                outputs.append([dataclasses.asdict(run_predict(self.chat, item.data, self.config))
                                for _ in range(self.attempts)])
            except Exception as e:
                outputs.append(e)
        return outputs

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
