from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from curation.evaluation import (
    PredictionError,
    evaluate,
    read_predictions,
    write_clip_order,
    write_per_class,
)
from pipeline.models import PipelineRun
from relabel_app.models import Dataset


class Command(BaseCommand):
    help = (
        "mAP of a classifier's predictions against a dataset's labels: the mean over the "
        "classes with at least one positive of the average precision (the AudioSet paper's "
        "metric). PRED is a CSV (ytid, then 527 scores in class-index order; or a header row "
        "'ytid,<mid>,...' naming the columns) or a .npy array of shape (clips, 527) in the "
        "dataset's clip order, which --write-order PATH writes."
    )

    def add_arguments(self, parser):
        parser.add_argument("pred", nargs="?", help="Predictions: .csv or .npy.")
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument("--against", default="original",
                            help="Ground truth: original (the dataset's labels), curated (the "
                                 "curated set, keep-original policy) or run:ID (a run's kept "
                                 "candidates). Default: original.")
        parser.add_argument("--out", help="Write per-class AP to this CSV file.")
        parser.add_argument("--write-order", metavar="PATH",
                            help="Write the dataset's clip order (the rows of a .npy file) as "
                                 "CSV to PATH.")

    def handle(self, *args, pred, dataset, against, out, write_order, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        if write_order:
            n = write_clip_order(ds, Path(write_order))
            self.stdout.write(f"wrote the order of {n:,} clips to {write_order}")
        if pred is None:
            if not write_order:
                raise CommandError("give a predictions file (PRED), or --write-order PATH")
            return
        against = self._against(ds, against)
        if out and Path(out).is_dir():
            raise CommandError(f"--out {out} is a folder")
        try:
            clip_ids, scores, columns = read_predictions(Path(pred), ds)
        except PredictionError as e:
            raise CommandError(f"{pred}: {e}") from None
        result = evaluate(dataset=ds, clip_ids=clip_ids, scores=scores, columns=columns,
                          against=against)
        if result.map is None:
            self.stdout.write(f"mAP: none (no class has a positive among the {result.clips:,} "
                              f"clips, against {against})")
        else:
            self.stdout.write(f"mAP {result.map:.4f} over {result.classes} classes and "
                              f"{result.clips:,} clips (against {against})")
        if out:
            write_per_class(result, Path(out))
            self.stdout.write(f"per-class AP written to {out}")

    @staticmethod
    def _against(ds: Dataset, against: str) -> str:
        if against in ("original", "curated"):
            return against
        if against.startswith("run:"):
            try:
                run_id = int(against[4:])
            except ValueError:
                raise CommandError(f"--against {against!r}: run:ID takes a number") from None
            if not PipelineRun.objects.filter(pk=run_id, dataset=ds).exists():
                raise CommandError(f"--against {against}: no run {run_id} in dataset {ds.name!r}")
            return f"run:{run_id}"
        raise CommandError(f"--against {against!r}: use original, curated or run:ID")
