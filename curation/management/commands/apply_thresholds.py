import time

from django.core.management.base import BaseCommand, CommandError

from curation.thresholds import (
    ThresholdError,
    derived_run_kept_counts,
    threshold_set_apply,
    threshold_set_by_name,
)
from pipeline.models import PipelineRun
from relabel_app.ids import BadNumber, command_int


class Command(BaseCommand):
    help = (
        "Create a derived run whose kept candidates follow a threshold set's per-class "
        "thresholds, computed in SQL from the run's stored CLAP scores (no model is rerun). "
        "The derived run is reviewed, audited and exported like any run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", required=True, help="Source run id.")
        parser.add_argument("--set", required=True, dest="set_name",
                            help="Threshold set name (its latest version), or NAME@VERSION.")

    def handle(self, *args, run, set_name, **options):
        run = command_int(run, name="--run")
        source = PipelineRun.objects.filter(pk=run).first()
        if source is None:
            raise CommandError(f"no run {run}")
        try:
            ts = threshold_set_by_name(set_name)
        except BadNumber as e:
            raise CommandError(f"--set {set_name!r}: {e}") from None
        if ts is None:
            raise CommandError(f"no threshold set named {set_name!r}")
        t0 = time.perf_counter()
        try:
            derived = threshold_set_apply(run=source, threshold_set=ts)
        except ThresholdError as e:
            raise CommandError(str(e)) from None
        dt = time.perf_counter() - t0
        n, kept = derived_run_kept_counts(derived)
        _, kept_before = derived_run_kept_counts(source)
        self.stdout.write(
            f"derived run {derived.pk} from run {source.pk} with threshold set {ts.name} "
            f"v{ts.version}: {n:,} candidates, {kept:,} kept (the source kept {kept_before:,}) "
            f"in {dt:.1f} s")
