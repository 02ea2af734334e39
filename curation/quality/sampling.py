"""Creating a quality study: the precision part and the recall part, one SQL statement
each, in one transaction with the study row (bad input: QualityError, nothing written).

Sampling is by hash rank: every labelled pair gets a seeded hash of (clip, class) and each
(source, class) stratum keeps its per_class smallest. That is a uniform random sample of
the stratum without replacement, reproducible from the seed, and *coordinated* across
sources: a pair that several sources carry gets the same rank in each, so it is drawn in
all of them or none more often than by chance, and asked once (credited to each)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Least

from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from relabel_app.names import dataset_name_problem

from ..models import Policy
from ..resolution import Scope, curated_ctes, scope_for
from .models import QualityQuestion, QualityRecallClip, QualityStratum, QualityStudy

ORIGINAL = "original"
CURATED = "curated"
RUN_PREFIX = "run:"


class QualityError(ValueError):
    """Bad input for a quality study (the message is the reason, shown as is)."""


@dataclass(frozen=True)
class SourceSpec:
    name: str  # as given: original / run:ID / curated
    run_id: int | None = None


def parse_sources(*, dataset: Dataset, sources: Sequence[str]) -> list[SourceSpec]:
    """Validate source names against the dataset: a run must exist and be this dataset's."""
    out: list[SourceSpec] = []
    if not sources:
        raise QualityError("give at least one source (original, run:ID or curated)")
    for raw in sources:
        name = (raw or "").strip()
        if name in (ORIGINAL, CURATED):
            out.append(SourceSpec(name))
        elif name.startswith(RUN_PREFIX) and name[len(RUN_PREFIX):].isdigit():
            run_id = int(name[len(RUN_PREFIX):])
            run = PipelineRun.objects.filter(pk=run_id).only("dataset_id").first()
            if run is None:
                raise QualityError(f"source {name}: no run {run_id}")
            if run.dataset_id != dataset.pk:
                raise QualityError(f"source {name}: run {run_id} belongs to another dataset")
            out.append(SourceSpec(f"{RUN_PREFIX}{run_id}", run_id))
        else:
            raise QualityError(f"unknown source {name!r}: use original, run:ID or curated")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise QualityError("a source is given twice")
    return out


def _source_sql(specs: Sequence[SourceSpec], *, only_clips: str = "") -> str:
    """The labelled pairs of every source as (s, clip_id, label_id), s the source index.
    ``only_clips``: a relation of clip ids (the recall part's ``pick``) to read only those
    clips, by index, instead of every label of the dataset.

    No DISTINCT (profiled at 2M clips: hashing 6M run labels and 4M curated ones spilled
    to disk, ~15 s a pass): the pairs are unique already. ``curated`` is the accepted
    pairs (one row per decided pair) and the originals with no resolved decision, which
    are disjoint; a run's ``selected`` candidates are one attempt per clip
    (pipeline.chain.match / filter) and (run, clip, attempt, label) is unique."""
    parts = []
    only = f" AND {{col}} IN (SELECT id FROM {only_clips})" if only_clips else ""
    for i, spec in enumerate(specs):
        if spec.name == ORIGINAL:
            parts.append(
                f"SELECT {i}::smallint AS s, cl.clip_id, cl.label_id FROM {ClipLabel._meta.db_table} cl "
                f"JOIN {Clip._meta.db_table} c ON c.id = cl.clip_id "
                "WHERE c.dataset_id = %(dataset_id)s" + only.format(col="cl.clip_id"))
        elif spec.name == CURATED:
            # The curated CTEs are already narrowed to only_clips (see _ctes).
            parts.append(f"SELECT {i}::smallint AS s, clip_id, label_id FROM curated")
        else:
            # A run's kept labels (the attempt review shows); the run is this dataset's.
            parts.append(
                f"SELECT {i}::smallint AS s, k.clip_id, k.label_id "
                f"FROM {Candidate._meta.db_table} k WHERE k.run_id = {int(spec.run_id)} "
                "AND k.kept AND k.selected" + only.format(col="k.clip_id"))
    return "\nUNION ALL\n".join(parts)


@dataclass(frozen=True)
class _OnlyClips(Scope):
    """The dataset's scope narrowed to the clips of a relation (the recall part's pick),
    so the curated CTEs read those clips' decisions and labels only."""

    only: str = ""

    def clip_filter(self, alias: str) -> str:
        return super().clip_filter(alias) + f" AND {alias}.id IN (SELECT id FROM {self.only})"


# Seeded hashes (PostgreSQL's hashint8extended: cheap, unlike md5 over millions of rows).
# Rank of a pair: uniform on [0, 1), the same in every source. Units: the questions of one
# clip share one, so they are asked together; units in hash order (salted apart).
_RANK = ("((hashint8extended({clip}::bigint * 65536 + {label}, %(seed)s::bigint)"
         " & 140737488355327)::float8 / 140737488355328.0)")
_UNIT = "hashint8extended({clip}::bigint, %(seed)s::bigint # 6148914691236517205)"
_RECALL_RANK = "hashint8extended({clip}::bigint, %(seed)s::bigint # 3074457345618258602)"


def _ctes(dataset: Dataset, specs: Sequence[SourceSpec], policy: str, *,
          recall: bool = False) -> str:
    """``lab`` (the study's classes) and ``src`` (every source's pairs in those classes).
    With ``recall``: first ``pick``, the recall clips, and ``src`` reads only those."""
    scope = scope_for(dataset=dataset)
    head = ""
    if recall:
        head = f"""
    pick AS MATERIALIZED (
        SELECT c.id FROM {Clip._meta.db_table} c WHERE c.dataset_id = %(dataset_id)s
        ORDER BY {_RECALL_RANK.format(clip="c.id")}, c.id
        LIMIT %(recall_clips)s
    ),"""
        scope = _OnlyClips(**{f.name: getattr(scope, f.name)
                              for f in fields(Scope)}, only="pick")
    if any(s.name == CURATED for s in specs):
        head += curated_ctes(scope, policy).removeprefix("WITH ") + ","
    # The precision part reads src twice (counts, then ranks): MATERIALIZED reads the
    # sources once (profiled at 2M clips: computing it twice was half the time).
    mat = "NOT MATERIALIZED" if recall else "MATERIALIZED"
    rank = _RANK.format(clip="x.clip_id", label="x.label_id")
    return "WITH " + head + f"""
    lab AS (
        SELECT id FROM {Label._meta.db_table}
        WHERE index IS NOT NULL AND (%(all_classes)s OR mid = ANY(%(mids)s))
    ),
    src AS {mat} (
        SELECT x.s, x.clip_id, x.label_id, {rank} AS u
        FROM ({_source_sql(specs, only_clips="pick" if recall else "")}) x
        JOIN lab ON lab.id = x.label_id
    )"""


# The precision part ranks only the pairs whose rank lies below MARGIN / N in their
# stratum of N labels: about MARGIN of them (per_class plus six standard deviations and
# ten), instead of sorting every label of every source (~17M rows at 2M clips). The
# per_class smallest ranks are among them unless a stratum falls short, which the caller
# detects (drawn < min(per_class, N)) and then ranks everything, so the sample is exactly
# the per_class smallest ranks either way.


def _margin(per_class: int) -> float:
    return per_class + 6 * per_class ** 0.5 + 10


def _precision_sql(ctes: str, *, prefilter: bool) -> str:
    q, st = QualityQuestion._meta.db_table, QualityStratum._meta.db_table
    where = "WHERE k.u < %(margin)s / c.n" if prefilter else ""
    return ctes + f""",
    counts AS MATERIALIZED (
        SELECT s, label_id, count(*) AS n FROM src GROUP BY s, label_id
    ),
    cand AS MATERIALIZED (
        SELECT k.s, k.clip_id, k.label_id, k.u
        FROM src k JOIN counts c ON c.s = k.s AND c.label_id = k.label_id
        {where}
    ),
    ranked AS (
        -- Over the few candidates only: ranking src itself made the planner sort all of
        -- it (14M rows at 2M clips) for a merge join.
        SELECT k.s, k.clip_id, k.label_id,
               row_number() OVER (PARTITION BY k.s, k.label_id ORDER BY k.u, k.clip_id) AS rn
        FROM cand k
    ),
    drawn AS (
        SELECT * FROM ranked WHERE rn <= %(per_class)s
    ),
    strata AS (
        INSERT INTO {st} (study_id, source, label_id, population, drawn)
        SELECT %(study_id)s, c.s, c.label_id, c.n, coalesce(d.n, 0)
        FROM counts c
        LEFT JOIN (SELECT s, label_id, count(*) AS n FROM drawn GROUP BY s, label_id) d
               ON d.s = c.s AND d.label_id = c.label_id
        RETURNING 1
    )
    INSERT INTO {q} (study_id, clip_id, label_id, drawn_in, in_sources, recall, unit,
                     answer_count)
    SELECT %(study_id)s, clip_id, label_id, array_agg(s ORDER BY s), '{{}}', false,
           {_UNIT.format(clip="clip_id")}, 0
    FROM drawn
    GROUP BY clip_id, label_id"""


def _recall_sql(ctes: str) -> str:
    q, rc = QualityQuestion._meta.db_table, QualityRecallClip._meta.db_table
    return ctes + f""",
    rc AS (
        INSERT INTO {rc} (study_id, clip_id, unit)
        SELECT %(study_id)s, p.id, {_UNIT.format(clip="p.id")} FROM pick p
        RETURNING clip_id, unit
    ),
    pooled AS (
        SELECT src.clip_id, src.label_id, array_agg(DISTINCT src.s) AS in_sources,
               min(rc.unit) AS unit
        FROM src JOIN rc ON rc.clip_id = src.clip_id
        GROUP BY src.clip_id, src.label_id
    )
    INSERT INTO {q} (study_id, clip_id, label_id, drawn_in, in_sources, recall, unit,
                     answer_count)
    SELECT %(study_id)s, clip_id, label_id, '{{}}', in_sources, true, unit, 0 FROM pooled
    ON CONFLICT (study_id, clip_id, label_id)
    DO UPDATE SET in_sources = EXCLUDED.in_sources, recall = true"""


def _class_mids(classes: Sequence[str] | None) -> list[str]:
    mids = [m.strip() for m in (classes or []) if m and m.strip()]
    if not mids:
        return []
    known = set(Label.objects.filter(mid__in=mids, index__isnull=False)
                .values_list("mid", flat=True))
    mids = [m for m in dict.fromkeys(mids) if m in known]
    if not mids:
        raise QualityError("no trainable class left in the class list")
    return mids


@transaction.atomic
def quality_study_create(
    *,
    dataset: Dataset,
    name: str,
    sources: Sequence[str],
    per_class: int = 10,
    recall_clips: int = 100,
    answers_per_question: int = 1,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    policy: str = Policy.KEEP_ORIGINAL,
    created_by=None,
    answerers: Sequence = (),
) -> QualityStudy:
    """Create a study and draw its questions. Raises QualityError with the reason (and
    writes nothing) on bad input."""
    name = (name or "").strip()
    # The dataset-name rule: study names reach URLs and file names the same way.
    problem = dataset_name_problem(name)
    if problem:
        raise QualityError("study name: " + problem.replace("dataset name", "name"))
    if QualityStudy.objects.filter(dataset=dataset, name=name).exists():
        raise QualityError(f"dataset {dataset.name} already has a study named {name}")
    if per_class < 1:
        raise QualityError("per_class must be at least 1")
    if recall_clips < 0:
        raise QualityError("recall_clips must be 0 or more")
    if not 1 <= answers_per_question <= 5:
        raise QualityError("answers_per_question must be 1 to 5")
    specs = parse_sources(dataset=dataset, sources=sources)
    mids = _class_mids(classes)
    study = QualityStudy.objects.create(
        dataset=dataset, name=name, sources=[s.name for s in specs], per_class=per_class,
        recall_clips=recall_clips, answers_per_question=answers_per_question, seed=seed,
        classes=mids, policy=Policy(policy).value, created_by=created_by,
        total_clips=Clip.objects.filter(dataset=dataset).count(),
    )
    if answerers:
        study.answerers.set(answerers)
    params = {"dataset_id": dataset.pk, "study_id": study.pk, "seed": seed,
              "per_class": per_class, "recall_clips": recall_clips,
              "all_classes": not mids, "mids": mids, "margin": _margin(per_class)}
    ctes = _ctes(dataset, specs, study.policy)
    params.update(scope_for(dataset=dataset).params())
    with connection.cursor() as cur:
        # Profiled at 2M clips (EXPLAIN ANALYZE): with the default work_mem the hashes
        # spilled to disk, JIT compiled for ~1.5 s, and the planner (which cannot know
        # that few pairs pass ``u < margin / n``) sorted all 14M pairs to merge-join them
        # with the 1,581 counts, a third of the time. For this transaction only.
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL enable_mergejoin = off")
        cur.execute(_precision_sql(ctes, prefilter=True), params)
        short = QualityStratum.objects.filter(study=study).filter(
            drawn__lt=Least(F("population"), per_class)).exists()
        if short:  # see _margin: astronomically rare, and then exact anyway
            QualityQuestion.objects.filter(study=study).delete()
            QualityStratum.objects.filter(study=study).delete()
            cur.execute(_precision_sql(ctes, prefilter=False), params)
        if recall_clips:
            cur.execute(_recall_sql(_ctes(dataset, specs, study.policy, recall=True)), params)
    if not QualityStratum.objects.filter(study=study).exists() and not (
            recall_clips and QualityRecallClip.objects.filter(study=study).exists()):
        raise QualityError("nothing to ask: no source has a label in the chosen classes")
    return study
