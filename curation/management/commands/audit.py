import json

from django.core.management.base import BaseCommand, CommandError

from curation.audits import dataset_audit
from pipeline.models import PipelineRun
from relabel_app.models import Dataset


def _f(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


class Command(BaseCommand):
    help = (
        "Audit figures of a dataset: labels per clip, agreement of the original labels with a "
        "run, error categories, pipeline vs experts (precision/recall, CLAP threshold curve, "
        "mAP), reviewer agreement and throughput. --json prints the dashboard's figures."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument("--run", type=int,
                            help="Run or external label set to compare (default: the latest "
                                 "run of the model chain).")
        parser.add_argument("--json", action="store_true", help="Print every figure as JSON.")

    def handle(self, *args, dataset, run=None, json=False, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        run_obj = None
        if run is not None:
            run_obj = PipelineRun.objects.filter(pk=run, dataset=ds).first()
            if run_obj is None:
                raise CommandError(f"no run {run} in dataset {dataset!r}")
        figures = dataset_audit(dataset=ds, run=run_obj)
        if json:
            self.stdout.write(_dumps(figures))
            return
        self._summary(figures)

    def _summary(self, f: dict) -> None:
        w = self.stdout.write
        run = f"#{f['run']['id']} {f['run']['profile']}" if f["run"] else "none"
        w(f"dataset {f['dataset']}: {f['clips']} clips; run: {run}")
        for key, block in f["label_counts"].items():
            if block:
                w(f"  labels per clip, {key}: average {_f(block['average'])} over "
                  f"{block['clips']} clips; histogram {block['histogram']}")
        a = f["agreement"]
        if a:
            w(f"  originals kept by the run: {_f(a['original_kept_fraction'])}; run labels that "
              f"were original: {_f(a['run_original_fraction'])}")
        e = f["error_categories"]
        w(f"  decisions with an error category: {e['decisions_with_category']}")
        p = f["pipeline_vs_experts"]
        if p:
            o = p["overall"]
            w(f"  kept candidates vs experts: precision {_f(o['precision'])}, "
              f"recall {_f(o['recall'])}")
            best = p["pr_curve"]["best"]
            if best:
                w(f"  best CLAP threshold {_f(best['threshold'], 4)} (F1 {_f(best['f1'])}); "
                  f"CLAP mAP {_f(p['clap_map']['map'])}")
        r = f["reviewer_agreement"]
        w(f"  Krippendorff's alpha {_f(r['alpha'])} over {r['units']} labels; "
          f"{len(r['pairs'])} reviewer pairs")
        for t in f["throughput"]:
            w(f"  {t['reviewer']}: {t['decisions']} decisions, "
              f"{_f(t['decisions_per_hour'], 1)} per active hour")


def _dumps(figures: dict) -> str:
    return json.dumps(figures, indent=2, sort_keys=False, ensure_ascii=False)
