from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from curation.exports import ExportError, export_to_path
from curation.models import ExportJob, Policy
from relabel_app.models import Dataset


class Command(BaseCommand):
    help = (
        "Export a dataset's curated labels as an AudioSet segments CSV, as JSON "
        '({"data": [{"wav", "labels"}]}), or its reviewers\' decisions as a CSV. Streamed: '
        "memory stays constant whatever the dataset's size."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument("--format", default=ExportJob.Format.CSV,
                            choices=ExportJob.Format.values,
                            help="csv: AudioSet segments; json: AST/SSAST; decisions: the "
                                 "decisions and adjudications, for auditing (default: csv).")
        parser.add_argument("--policy", default=Policy.KEEP_ORIGINAL, choices=Policy.values,
                            help="What unresolved labels become (default: keep-original). "
                                 "Not used by --format decisions.")
        parser.add_argument("--out", required=True, help="File to write (replaced if present).")

    def handle(self, *args, dataset, format, policy, out, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        path = Path(out)
        if path.is_dir():
            raise CommandError(f"--out {out} is a folder")
        try:
            r = export_to_path(dataset=ds, fmt=format, policy=policy, path=path)
        except (ExportError, OSError) as e:
            raise CommandError(f"export failed, nothing written to {out}: {e}") from None
        if format == ExportJob.Format.DECISIONS:
            what = f"{r.rows:,} decisions"
        else:
            what = (f"{r.num_segs:,} clips, {r.num_positive_labels:,} labels of "
                    f"{r.num_unique_labels} classes ({r.clips_left_out:,} of "
                    f"{r.clips_in_scope:,} clips left out: no curated label; policy {policy})")
            if r.labels_not_trainable:
                what += (f"; {r.labels_not_trainable:,} curated labels left out: not among "
                         "the 527 trainable classes")
        self.stdout.write(
            f"{ds.name}: {what} -> {path} ({r.bytes:,} bytes, {r.seconds:.1f} s, "
            f"{r.rows_per_s:,.0f} rows/s)"
        )
