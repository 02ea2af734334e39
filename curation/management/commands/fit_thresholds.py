from django.core.management.base import BaseCommand, CommandError

from curation.thresholds import (
    DEFAULT_FOLDS,
    DEFAULT_MIN_DECISIONS,
    ThresholdError,
    threshold_set_fit,
    threshold_set_rows,
)
from pipeline.models import PipelineRun
from relabel_app.ids import INTEGER_MAX, command_int
from relabel_app.models import Dataset


def _f(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


class Command(BaseCommand):
    help = (
        "Fit per-class CLAP thresholds from expert decisions on a run's candidates: for each "
        "class with at least --min-decisions decided candidates, the threshold maximising F1 "
        "against the curated state; a global threshold for the rest. Stored as the next "
        "version of a named threshold set, with precision / recall / F1 of global vs per-class "
        "thresholds on held-out clips (k-fold by clip)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument("--run", required=True,
                            help="Run whose CLAP scores and decided candidates to fit on.")
        parser.add_argument("--min-decisions", default=str(DEFAULT_MIN_DECISIONS),
                            help=f"Decided candidates a class needs for a threshold of its own "
                                 f"(default {DEFAULT_MIN_DECISIONS}).")
        parser.add_argument("--name", help="Threshold set name (default: the dataset's name); "
                                           "each fit under a name is a new version.")
        parser.add_argument("--folds", default=str(DEFAULT_FOLDS),
                            help=f"Folds of the held-out evaluation (default {DEFAULT_FOLDS}).")

    def handle(self, *args, dataset, run, min_decisions, name, folds, **options):
        # Read here, not by argparse's int (which takes "٣" and answers bad ones with usage).
        run = command_int(run, name="--run")
        min_decisions = command_int(min_decisions, name="--min-decisions",
                                    max_value=INTEGER_MAX)
        folds = command_int(folds, name="--folds", min_value=0, max_value=1000)
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        run_obj = PipelineRun.objects.filter(pk=run, dataset=ds).first()
        if run_obj is None:
            raise CommandError(f"no run {run} in dataset {dataset!r}")
        if folds < 2:
            raise CommandError("--folds must be at least 2")
        try:
            ts = threshold_set_fit(dataset=ds, run=run_obj, name=name,
                                   min_decisions=min_decisions, folds=folds)
        except ThresholdError as e:
            raise CommandError(str(e)) from None
        w = self.stdout.write
        ev = ts.evaluation
        rows = threshold_set_rows(ts)
        w(f"threshold set {ts.name!r} version {ts.version} (id {ts.pk}) for CLAP model "
          f"{ts.clap_model}")
        w(f"  fitted on {ev['samples']:,} decided candidates ({ev['positives']:,} accepted); "
          f"global threshold {_f(ts.global_threshold, 4)} (F1 {_f(ev['global_f1'])}); "
          f"{len(rows)} classes with >= {min_decisions} decisions have their own")
        if ev.get("folds"):
            g, p = ev["global"], ev["per_class"]
            w(f"  held-out ({ev['folds']}-fold by clip, {ev['clips']:,} clips):")
            w(f"    global     precision {_f(g['precision'])} recall {_f(g['recall'])} "
              f"F1 {_f(g['f1'])}")
            w(f"    per-class  precision {_f(p['precision'])} recall {_f(p['recall'])} "
              f"F1 {_f(p['f1'])}")
        else:
            w(f"  no held-out evaluation: {ev.get('note', '')}")
        for r in rows:
            w(f"  {r.label.mid:<12} {r.label.name[:40]:<40} decisions {r.decisions:>6}  "
              f"threshold {r.threshold:.4f}  F1 {r.f1:.3f}")
        for r in ev.get("refused_classes", []):
            w(f"  {r['mid']:<12} {r['name'][:40]:<40} decisions {r['decisions']:>6}  "
              f"refused: {r['reason']}")
        for warning in ev.get("warnings", []):
            w(f"warning: {warning}")
