"""A fifth stage, as a project would add one: this module plus a migration for its
`toy_status` column. It appends a word count to each clip's summary. Loaded into a worker
by RELABEL_EXTRA_STAGES=tests.pipeline.toy_stage; tests/pipeline/test_stage_registry.py
plugs it into its own process (and adds the column the migration would add)."""

from pipeline.chain import Item, Stage, names, register


class ToyStage(Stage):
    name = "toy"
    queue = "toy"

    def prepare(self, chunk):
        return [Item(row, row.summary) for row in chunk]

    def call(self, items):
        # One "batched model call" over the chunk; an Exception fails that clip alone.
        return [ValueError("empty summary") if not item.data else len(item.data.split())
                for item in items]

    def write(self, results):
        for item, words in results:
            self.save(item.row, self.done(item.row, summary=f"{item.data} [{words} words]"))


if ToyStage.name not in names():
    register(ToyStage)
