from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.external_import import LabelsetImportError, labelset_import
from relabel_app.names import dataset_name_problem


class Command(BaseCommand):
    help = (
        "Import an external label set (the {\"data\": [{\"wav\", \"labels\"}]} JSON or a "
        "segments CSV) as a run without model outputs, matching clips of the dataset by YTID "
        "(and start when the file gives one). Importing the same --name again replaces it."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Label set file: .json ({\"data\": [...]}) or .csv.")
        parser.add_argument("--dataset", required=True, help="Existing dataset to match.")
        parser.add_argument("--name", required=True,
                            help="Name of the label set (the run's profile name).")
        parser.add_argument("--skip-bad", action="store_true",
                            help="Import the good items and report every bad one.")

    def handle(self, *args, path, dataset, name, skip_bad=False, **options):
        if problem := dataset_name_problem(dataset):
            raise CommandError(f"--dataset: {problem}\nNothing was imported.")
        if not Path(path).is_file():
            raise CommandError(f"{path}: no such file")
        try:
            r = labelset_import(path=path, dataset_name=dataset, name=name, skip_bad=skip_bad)
        except LabelsetImportError as e:
            raise CommandError(f"{e}\nNothing was imported.") from None
        for b in r.bad_items:
            self.stderr.write(f"{path}: {b.where}: skipped: {b.reason}")
        verb = "created" if r.created else "re-imported"
        self.stdout.write(
            f"{dataset}: label set {name!r} {verb} as run {r.run_id}: {r.items_read:,} items "
            f"read, {r.items_matched:,} matched {r.clips_matched:,} clips, "
            f"{r.candidates:,} labels, {len(r.bad_items)} bad items skipped "
            f"({r.seconds:.1f} s, {r.items_per_s:,.0f} items/s)"
        )
        if not r.created:
            self.stdout.write(
                f"replaced the earlier import: {r.added_candidates:,} labels added, "
                f"{r.removed_candidates:,} removed"
            )
        if r.ambiguous_items:
            self.stdout.write(
                f"{r.ambiguous_items:,} items without a start time matched several clips of "
                "the same YTID; each of those clips got the item's labels"
            )
        if r.unmatched_items:
            sample = ", ".join(r.unmatched_ytids)
            more = ", ..." if r.unmatched_items > len(r.unmatched_ytids) else ""
            if r.unmatched_items * 2 > r.items_read:
                share = 100.0 * r.unmatched_items / r.items_read
                self.stderr.write(self.style.ERROR(
                    f"WARNING: MORE THAN HALF OF THE FILE DOES NOT MATCH: {r.unmatched_items:,} "
                    f"of {r.items_read:,} items ({share:.1f}%) are not clips of {dataset}. "
                    "Check that this label set belongs to this dataset."
                ))
            self.stderr.write(
                f"warning: {r.unmatched_items:,} items are not clips of {dataset} and were not "
                f"imported: {sample}{more}"
            )
