"""The report of a study: reads the answers (a few queries whatever the dataset's size)
and turns them into estimates with curation.quality.stats. One dict feeds the page, the
CSVs, the JSON of the API and the command."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from relabel_app.models import Label

from . import stats
from .models import (
    QualityAnswer,
    QualityClipDone,
    QualityQuestion,
    QualityRecallClip,
    QualityStratum,
    QualityStudy,
)

TRUE, FALSE, UNSURE = "true", "false", "unsure"


def _resolved(n_accept: int, n_reject: int) -> str:
    """A question's answer: the majority of accept against reject; a tie (unsure answers
    included) is unsure."""
    if n_accept > n_reject:
        return TRUE
    if n_reject > n_accept:
        return FALSE
    return UNSURE


@dataclass
class ClassRow:
    mid: str
    name: str
    label_id: int
    source: str
    population: int
    drawn: int
    rated: int = 0
    true: int = 0
    unsure: int = 0
    estimate: stats.Estimate = stats.NONE
    whole: bool = False
    differs: bool = False

    def as_dict(self) -> dict:
        return {"mid": self.mid, "name": self.name, "source": self.source,
                "labels": self.population, "drawn": self.drawn, "rated": self.rated,
                "true": self.true, "unsure": self.unsure, "precision": self.estimate.value,
                "low": self.estimate.low, "high": self.estimate.high,
                "taken_whole": self.whole, "differs": self.differs}


def _precision_tallies(study: QualityStudy) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(source, label) -> (true, false, unsure) over the answered questions each source
    drew, counted in SQL from the questions' stored tallies (QualityQuestion.n_accept /
    n_reject; see _resolved: a tie is unsure)."""
    q = QualityQuestion._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"""
            SELECT s, q.label_id,
                   count(*) FILTER (WHERE q.n_accept > q.n_reject),
                   count(*) FILTER (WHERE q.n_reject > q.n_accept),
                   count(*) FILTER (WHERE q.n_accept = q.n_reject)
            FROM {q} q CROSS JOIN LATERAL unnest(q.drawn_in) AS s
            WHERE q.study_id = %s AND q.answer_count > 0
            GROUP BY s, q.label_id""", [study.pk])
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in cur.fetchall()}


def _progress(study: QualityStudy) -> tuple[int, int]:
    """(answered, total) questions."""
    q = QualityQuestion._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FILTER (WHERE answer_count > 0), count(*) FROM {q} "
                    "WHERE study_id = %s", [study.pk])
        return cur.fetchone()


def _recall_questions(study: QualityStudy) -> list[tuple]:
    """The recall part's questions: (id, clip, label, drawn_in, in_sources, recall,
    resolved or None)."""
    q = QualityQuestion._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"""
            SELECT id, clip_id, label_id, drawn_in, in_sources, recall, n_accept, n_reject,
                   answer_count
            FROM {q} WHERE study_id = %s AND recall""", [study.pk])
        return [(r[0], r[1], r[2], r[3], r[4], r[5], _resolved(r[6], r[7]) if r[8] else None)
                for r in cur.fetchall()]


def quality_report(study: QualityStudy, *, bootstrap_rounds: int = 2000) -> dict:
    sources = list(study.sources)
    strata = list(QualityStratum.objects.filter(study=study)
                  .values_list("source", "label_id", "population", "drawn"))
    labels = {pk: (mid, name) for pk, mid, name in Label.objects.filter(
        pk__in={st[1] for st in strata}).values_list("pk", "mid", "name")}
    rows: dict[tuple[int, int], ClassRow] = {}
    for source, label_id, population, drawn in strata:
        mid, name = labels[label_id]
        rows[(source, label_id)] = ClassRow(
            mid=mid, name=name, label_id=label_id, source=sources[source],
            population=population, drawn=drawn, whole=population <= study.per_class)
    for key, (n_true, n_false, n_unsure) in _precision_tallies(study).items():
        row = rows.get(key)
        if row is not None:
            row.true, row.rated, row.unsure = n_true, n_true + n_false, n_unsure
    answered, total = _progress(study)
    for row in rows.values():
        row.estimate = stats.wilson(row.true, row.rated)
    # Classes whose intervals do not overlap between two sources.
    by_label: dict[int, list[ClassRow]] = defaultdict(list)
    for row in rows.values():
        by_label[row.label_id].append(row)
    for group in by_label.values():
        for a in group:
            a.differs = any(not stats.intervals_overlap(a.estimate, b.estimate)
                            for b in group if b is not a)

    recall = _recall_part(study, _recall_questions(study) if study.recall_clips else [])
    per_source = []
    overall: dict[int, stats.Estimate] = {}
    for i, name in enumerate(sources):
        srows = [r for (s, _), r in rows.items() if s == i]
        est = stats.stratified_precision(
            [stats.Stratum(r.population, r.rated, r.true) for r in srows])
        overall[i] = est
        labels_total = sum(r.population for r in srows)
        rec, miss = (stats.recall_estimates(recall[i], seed=study.seed, rounds=bootstrap_rounds)
                     if recall else (stats.NONE, stats.NONE))
        per_source.append({
            "source": name, "labels": labels_total, "classes": len(srows),
            "classes_rated": sum(1 for r in srows if r.rated),
            "classes_whole": sum(1 for r in srows if r.whole),
            "labels_unrated": sum(r.population for r in srows if not r.rated),
            "precision": est.as_dict(),
            "macro_precision": stats.macro_precision([r.estimate.value for r in srows]),
            "labels_per_clip": labels_total / study.total_clips if study.total_clips else None,
            "recall": rec.as_dict(), "missing_per_clip": miss.as_dict(),
        })
    differences = []
    for i in range(1, len(sources)):
        for j in range(i):
            d = stats.precision_difference(overall[i], overall[j])
            rd = (stats.recall_difference(recall[i], recall[j], seed=study.seed,
                                          rounds=bootstrap_rounds) if recall else stats.NONE)
            differences.append({"a": sources[i], "b": sources[j], "precision": d.as_dict(),
                                "recall": rd.as_dict()})
    agree = stats.agreement(_answer_pairs(study)) if study.answers_per_question > 1 else None
    return {
        "study": {"id": study.pk, "name": study.name, "dataset": study.dataset.name,
                  "sources": sources, "per_class": study.per_class,
                  "recall_clips": study.recall_clips,
                  "answers_per_question": study.answers_per_question, "seed": study.seed,
                  "created_at": study.created_at.isoformat(), "status": study.status},
        "progress": {"answered": answered, "total": total,
                     "recall_clips_done": len(recall[0]) if recall else 0},
        "sources": per_source,
        "differences": differences,
        "agreement": (None if agree is None else
                      {"pairs": agree.pairs, "percent": agree.percent, "kappa": agree.kappa}),
        "classes": sorted(rows.values(), key=lambda r: (r.mid, sources.index(r.source))),
    }


def _recall_part(study: QualityStudy, questions: list[tuple]) -> dict[int, list[stats.RecallClip]]:
    """Per source, one RecallClip per finished recall clip whose questions all have an
    answer (a clip still being answered would read as missing labels)."""
    if not study.recall_clips:
        return {}
    done = set(QualityClipDone.objects.filter(study=study).values_list("clip_id", flat=True))
    clips = [c for c in QualityRecallClip.objects.filter(study=study)
             .values_list("clip_id", flat=True) if c in done]
    per_clip: dict[int, list[tuple]] = defaultdict(list)
    for q in questions:
        if q[5]:
            per_clip[q[1]].append(q)
    out: dict[int, list[stats.RecallClip]] = {i: [] for i in range(len(study.sources))}
    for clip_id in sorted(clips):
        qs = per_clip.get(clip_id, [])
        if any(q[6] is None for q in qs):
            continue
        present = [q for q in qs if q[6] == TRUE]
        for i in out:
            out[i].append(stats.RecallClip(len(present), sum(1 for q in present if i in q[4])))
    return out


def _answer_pairs(study: QualityStudy) -> list[tuple[str, str]]:
    firsts: dict[int, list[str]] = defaultdict(list)
    for qid, verdict in (QualityAnswer.objects.filter(question__study=study)
                         .order_by("question_id", "id").values_list("question_id", "verdict")):
        firsts[qid].append(verdict)
    return [(v[0], v[1]) for v in firsts.values() if len(v) >= 2]


def overall_lines(report: dict) -> list[str]:
    """The report's overall figures as text lines (the command, the note)."""

    def pct(e: dict | None) -> str:
        if not e or e.get("value") is None:
            return "n/a"
        if e.get("low") is None:
            return f"{100 * e['value']:.1f} %"
        return f"{100 * e['value']:.1f} % [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"

    def num(e: dict) -> str:
        if e.get("value") is None:
            return "n/a"
        return f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}]" if e.get("low") is not None \
            else f"{e['value']:.2f}"

    lines = []
    for s in report["sources"]:
        macro = s["macro_precision"]
        lpc = s["labels_per_clip"]
        lines.append(
            f"{s['source']}: precision {pct(s['precision'])} over {s['labels']} labels in "
            f"{s['classes']} classes ({s['classes_rated']} rated); macro "
            f"{'n/a' if macro is None else f'{100 * macro:.1f} %'}; recall {pct(s['recall'])}; "
            f"missing labels per clip {num(s['missing_per_clip'])}; labels per clip "
            f"{'n/a' if lpc is None else f'{lpc:.2f}'}")
    for d in report["differences"]:
        p = d["precision"]
        if p["value"] is not None:
            lines.append(f"{d['a']} − {d['b']}: {100 * p['value']:+.1f} points "
                         f"[{100 * p['low']:+.1f}, {100 * p['high']:+.1f}] precision")
        r = d["recall"]
        if r["value"] is not None and r["low"] is not None:
            lines.append(f"{d['a']} − {d['b']}: {100 * r['value']:+.1f} points "
                         f"[{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] recall")
    pr = report["progress"]
    lines.append(f"progress: {pr['answered']} / {pr['total']} questions answered")
    if report["agreement"]:
        a = report["agreement"]
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.2f}"
        lines.append(f"agreement: {100 * (a['percent'] or 0):.1f} % over {a['pairs']} "
                     f"questions, Cohen's kappa {kappa}")
    return lines


def report_json(report: dict) -> dict:
    """The report as JSON-ready data (the API and ``quality_study report --json``)."""
    return {**report, "classes": [r.as_dict() for r in report["classes"]]}
