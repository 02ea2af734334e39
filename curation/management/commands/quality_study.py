"""python manage.py quality_study create|report|list (issue 19)."""

import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from curation.quality.csv import full_csv
from curation.quality.csv import qa_csv as qa_csv_text
from curation.quality.models import QualityStudy
from curation.quality.report import overall_lines, quality_report, report_json
from curation.quality.sampling import QualityError, quality_study_create
from relabel_app.models import Dataset


def _dataset(name: str) -> Dataset:
    ds = Dataset.objects.filter(name=name).first()
    if ds is None:
        raise CommandError(f"no dataset named {name!r}")
    return ds


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise CommandError(f"cannot write {path}: {e.strerror}") from None


class Command(BaseCommand):
    help = ("Quality studies: blind expert checks on a seeded random sample of each label "
            "source, reported as per-class precision and recall with 95 % intervals.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        c = sub.add_parser("create", help="Create a study (draws its questions).")
        c.add_argument("--dataset", required=True)
        c.add_argument("--source", action="append", required=True, dest="sources",
                       help="original, run:ID or curated; repeat for several.")
        c.add_argument("--per-class", type=int, default=10)
        c.add_argument("--recall-clips", type=int, default=100)
        c.add_argument("--answers-per-question", type=int, default=1)
        c.add_argument("--classes", default="", help="MID,MID (default: every trainable class)")
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--name", required=True)
        r = sub.add_parser("report", help="Print a study's report; write its CSVs.")
        r.add_argument("study")
        r.add_argument("--dataset", required=True)
        r.add_argument("--json", action="store_true")
        r.add_argument("--csv", help="Write the full per-class CSV here.")
        r.add_argument("--qa-csv", help="Write one source's AudioSet-format CSV here.")
        r.add_argument("--source", help="The --qa-csv source (default: the study's first).")
        ls = sub.add_parser("list", help="The dataset's studies.")
        ls.add_argument("--dataset", required=True)

    def handle(self, *args, action, **opts):
        getattr(self, f"_{action}")(**opts)

    def _create(self, *, dataset, sources, per_class, recall_clips, answers_per_question,
                classes, seed, name, **_):
        ds = _dataset(dataset)
        try:
            study = quality_study_create(
                dataset=ds, name=name, sources=sources, per_class=per_class,
                recall_clips=recall_clips, answers_per_question=answers_per_question,
                classes=[m for m in classes.split(",") if m.strip()], seed=seed)
        except QualityError as e:
            raise CommandError(str(e)) from None
        n = study.questions.count()
        self.stdout.write(f"quality study {study.name} (id {study.pk}) on {ds.name}: {n} "
                          f"questions, sources {', '.join(study.sources)}")

    def _report(self, *, study, dataset, source, **opts):
        ds = _dataset(dataset)
        st = QualityStudy.objects.filter(dataset=ds, name=study).select_related("dataset").first()
        if st is None:
            raise CommandError(f"no study named {study!r} in dataset {dataset!r}")
        if source and source not in st.sources:
            raise CommandError(f"source {source!r} is not one of the study's sources "
                               f"({', '.join(st.sources)})")
        if source and not opts["qa_csv"]:
            raise CommandError("--source goes with --qa-csv")
        rep = quality_report(st)
        if opts["csv"]:
            _write(opts["csv"], full_csv(rep))
        if opts["qa_csv"]:
            _write(opts["qa_csv"], qa_csv_text(rep, source or st.sources[0]))
        if opts["json"]:
            self.stdout.write(jsonlib.dumps(report_json(rep), indent=2, cls=DjangoJSONEncoder))
        else:
            for line in overall_lines(rep):
                self.stdout.write(line)

    def _list(self, *, dataset, **_):
        ds = _dataset(dataset)
        for st in QualityStudy.objects.filter(dataset=ds).order_by("created_at", "id"):
            n = st.questions.count()
            a = st.questions.filter(answer_count__gt=0).count()
            self.stdout.write(f"{st.name}\tid {st.pk}\t{st.status}\t{', '.join(st.sources)}\t"
                              f"{a}/{n} answered\tcreated {st.created_at:%Y-%m-%d %H:%M}")

