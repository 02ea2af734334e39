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
        parser.add_argument("--run",
                            help="Run or external label set to compare (its id), or 'none' "
                                 "for none (default: the dataset's latest run, model chain "
                                 "or external label set).")
        parser.add_argument("--json", action="store_true", help="Print every figure as JSON.")

    def handle(self, *args, dataset, run=None, json=False, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        run_obj = None
        if run is not None and run.strip().lower() != "none":
            try:
                run_id = int(run)
            except ValueError:
                raise CommandError(f"--run must be a run id or 'none', not {run!r}") from None
            run_obj = PipelineRun.objects.filter(pk=run_id, dataset=ds).first()
            if run_obj is None:
                raise CommandError(f"no run {run} in dataset {dataset!r}")
        figures = dataset_audit(dataset=ds, run=run_obj, use_default_run=run is None)
        if figures["run_choice"] == "latest":
            r = figures["run"]
            # stderr, so that --json output stays one JSON document.
            self.stderr.write(f"no --run given: using the latest run of {dataset}, "
                              f"#{r['id']} {r['profile']} ({r['kind']})")
        if json:
            self.stdout.write(_dumps(figures))
            return
        self._summary(figures)

    def _summary(self, f: dict) -> None:
        w = self.stdout.write
        run = (f"#{f['run']['id']} {f['run']['profile']} ({f['run']['kind']})" if f["run"]
               else "none")
        w(f"dataset {f['dataset']}: {f['clips']} clips; run: {run}")
        if f.get("coverage"):
            w(f"  clips the run does not cover: {f['coverage']['uncovered_clips']:,} of "
              f"{f['clips']:,}")
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
        o = f.get("original_label_scores")
        if o:
            w("  mean CLAP of original labels: " + ", ".join(
                f"{k} {_f(v['mean_clap'])} ({v['labels']})" for k, v in o.items()))
        for g in f["gold"]["reviewers"]:
            w(f"  gold, {g['reviewer']}: precision {_f(g['precision'])}, recall "
              f"{_f(g['recall'])} over {g['gold_clips']} gold clips"
              + (" FLAGGED (below the floor)" if g["flagged"] else ""))
        r = f["reviewer_agreement"]
        w(f"  Krippendorff's alpha {_f(r['alpha'])} over {r['units']} labels; "
          f"{len(r['pairs'])} reviewer pairs")
        for t in f["throughput"]:
            w(f"  {t['reviewer']}: {t['decisions']} decisions, "
              f"{_f(t['decisions_per_hour'], 1)} per active hour")


def _dumps(figures: dict) -> str:
    return json.dumps(figures, indent=2, sort_keys=False, ensure_ascii=False)
