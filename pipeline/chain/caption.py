"""Stage 1: caption each clip with the audio chat model (pipeline.stages.caption)."""

from __future__ import annotations

import dataclasses

from pipeline import stage_declarations
from pipeline.stage_io import load_clip_audio
from pipeline.stages.caption import run_caption_batch

from .registry import Item, Stage

SAMPLE_RATE = 16000


class CaptionStage(stage_declarations.Caption, Stage):
    def setup(self) -> None:
        self.chat = self.backend("audio_chat")

    def prepare(self, chunk):
        items = []
        for row in chunk:
            try:
                items.append(Item(row, load_clip_audio(row.clip, SAMPLE_RATE)))
            except Exception as e:  # unreadable audio fails this clip alone
                self.fail(row, e)
        return items

    def call(self, items):
        # Each chat step is one batched model call over the clips that need it; the retry
        # is one batch of the clips that still fail the length rule (stages.caption).
        return run_caption_batch(
            self.chat, [(item.data, SAMPLE_RATE) for item in items], self.config
        )

    def write(self, results):
        for item, out in results:
            self.save(item.row, self.done(
                item.row, caption=dataclasses.asdict(out), summary=out.summary,
                summary_ok=out.summary_ok,
            ))
