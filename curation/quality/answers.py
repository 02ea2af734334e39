"""Answering a study: the one service the study screen, the API and scripted oracles use.
Each answer is stored with the study (QualityAnswer) and also recorded as an ordinary
decision through review.decisions.decision_record, so it improves the curated set like any
other decision (the study's estimate refers to the sources frozen at creation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F

from relabel_app.models import Clip, Label
from relabel_app.roles import user_can_review
from review.decisions import LabelRefused, decision_add_label, decision_record
from review.models import Decision, Verdict

from .models import QualityAnswer, QualityClipDone, QualityQuestion, QualityRecallClip, QualityStudy
from .sampling import QualityError


class QuestionFull(QualityError):
    """Enough other reviewers answered this question already."""


def may_answer(*, study: QualityStudy, user) -> bool:
    """The study's answerers, or every reviewer when none were chosen."""
    if not user_can_review(user) or study.status != QualityStudy.Status.OPEN:
        return False
    if not study.answerers.exists():
        return True
    return study.answerers.filter(pk=user.pk).exists()


def _tallies_update(question_ids: list[int]) -> None:
    """Recount the accept / reject tallies of these questions from their answers (a
    changed mind moves a vote, so counting again is simpler than adjusting)."""
    q, a = QualityQuestion._meta.db_table, QualityAnswer._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"""
            UPDATE {q} q SET n_accept = t.n_accept, n_reject = t.n_reject
            FROM (SELECT question_id,
                         count(*) FILTER (WHERE verdict = 'accept') AS n_accept,
                         count(*) FILTER (WHERE verdict = 'reject') AS n_reject
                  FROM {a} WHERE question_id = ANY(%s) GROUP BY question_id) t
            WHERE q.id = t.question_id""", [question_ids])


@transaction.atomic
def quality_answers_record(*, study: QualityStudy, reviewer,
                           answers: Sequence[tuple[int, str]]) -> int:
    """Record (question id, verdict) answers of one reviewer; a changed mind (z, then
    another key) updates the reviewer's own answer. A question already answered by
    ``answers_per_question`` other reviewers raises QuestionFull; nothing is written then.
    Returns the number of answers written."""
    if not may_answer(study=study, user=reviewer):
        raise QualityError("you are not among this study's answerers")
    wanted: dict[int, str] = {}
    for qid, verdict in answers:
        try:
            wanted[int(qid)] = Verdict(verdict).value
        except ValueError:
            raise QualityError(f"unknown verdict {verdict!r}") from None
    if not wanted:
        return 0
    questions = {q.pk: q for q in QualityQuestion.objects.select_for_update()
                 .filter(study=study, pk__in=wanted).select_related("clip", "label")}
    missing = set(wanted) - set(questions)
    if missing:
        raise QualityError(f"question {min(missing)} is not in this study")
    mine = set(QualityAnswer.objects.filter(question_id__in=wanted, reviewer=reviewer)
               .values_list("question_id", flat=True))
    new = [qid for qid in wanted if qid not in mine]
    full = [qid for qid in new if questions[qid].answer_count >= study.answers_per_question]
    if full:
        raise QuestionFull(f"question {full[0]} has all its answers already")
    QualityAnswer.objects.bulk_create(
        [QualityAnswer(question_id=qid, reviewer=reviewer, verdict=v) for qid, v in wanted.items()],
        update_conflicts=True, unique_fields=["question", "reviewer"],
        update_fields=["verdict", "answered_at"],
    )
    if new:
        QualityQuestion.objects.filter(pk__in=new).update(answer_count=F("answer_count") + 1)
    _tallies_update(list(wanted))
    # Ordinary decisions, through the decision service. A decision that already says the
    # same needs no call (decision_record would change and log nothing); skipping those
    # keeps bulk answering by an oracle to one query when nothing changes.
    current = {(c, lab): v for c, lab, v in Decision.objects.filter(
        reviewer=reviewer, clip_id__in={q.clip_id for q in questions.values()},
        label_id__in={q.label_id for q in questions.values()},
    ).values_list("clip_id", "label_id", "verdict")}
    for qid, verdict in wanted.items():
        q = questions[qid]
        if current.get((q.clip_id, q.label_id)) != verdict:
            decision_record(clip=q.clip, label=q.label, reviewer=reviewer, verdict=verdict)
    return len(wanted)


@transaction.atomic
def quality_classes_add(*, study: QualityStudy, reviewer,
                        additions: Sequence[tuple[Clip, Label]]) -> list[QualityQuestion]:
    """Recall part: the expert hears a class on a recall clip that no question asked about
    (the screen sends one at a time; a scripted oracle sends a study's at once). Refused like
    "Add a label" elsewhere (abstract / not trainable classes), and outside the study's
    classes; nothing is written then. Each class becomes a question of the clip, answered
    yes by the adder (quality_answers_record, so also an accepted decision)."""
    if not additions:
        return []
    units = dict(QualityRecallClip.objects.filter(
        study=study, clip_id__in={c.pk for c, _ in additions}).values_list("clip_id", "unit"))
    for clip, label in additions:
        if clip.pk not in units:
            raise QualityError("this clip is not in the study's recall part")
        if study.classes and label.mid not in study.classes:
            raise QualityError(f"{label.name} is not one of this study's classes")
        if label.index is None:
            # The review screen's refusal and its message (with the trainable children).
            try:
                decision_add_label(clip=clip, label=label, reviewer=reviewer)
            except LabelRefused as e:
                raise QualityError(str(e)) from None
    QualityQuestion.objects.bulk_create(
        [QualityQuestion(study=study, clip=clip, label=label, recall=True, in_sources=[],
                         drawn_in=[], unit=units[clip.pk], added_by=reviewer)
         for clip, label in additions], ignore_conflicts=True)
    wanted = {(c.pk, lab.pk) for c, lab in additions}
    questions = [q for q in QualityQuestion.objects.filter(
        study=study, clip_id__in={c for c, _ in wanted}, label_id__in={lab for _, lab in wanted})
        if (q.clip_id, q.label_id) in wanted]
    # A precision question on a recall clip is pooled too.
    QualityQuestion.objects.filter(pk__in=[q.pk for q in questions if not q.recall]).update(recall=True)
    quality_answers_record(study=study, reviewer=reviewer,
                           answers=[(q.pk, Verdict.ACCEPT) for q in questions])
    return questions


def quality_clips_done(*, study: QualityStudy, clips: Sequence[Clip], reviewer) -> None:
    """The reviewer answered these recall clips' classes and added what was missing."""
    ids = {c.pk for c in clips}
    known = set(QualityRecallClip.objects.filter(study=study, clip_id__in=ids)
                .values_list("clip_id", flat=True))
    if ids - known:
        raise QualityError("this clip is not in the study's recall part")
    QualityClipDone.objects.bulk_create(
        [QualityClipDone(study=study, clip_id=c, reviewer=reviewer) for c in sorted(ids)],
        ignore_conflicts=True)


# --- what to ask next -------------------------------------------------------------------


@dataclass
class Unit:
    """One clip's questions for one reviewer (what the screen shows together)."""

    unit: int
    clip: Clip
    questions: list[QualityQuestion]
    recall: bool


def quality_next_units(*, study: QualityStudy, reviewer, limit: int = 3,
                       after_unit: int | None = None) -> list[Unit]:
    """The reviewer's next clips in the study's shuffled order: questions still short of
    answers that this reviewer has not answered, and recall clips this reviewer has not
    finished. ``after_unit``: only units after this one (the screen's preload)."""
    k = study.answers_per_question
    qs = (QualityQuestion.objects.filter(study=study, answer_count__lt=k)
          .exclude(answers__reviewer=reviewer))
    rc = (QualityRecallClip.objects.filter(study=study)
          .exclude(clip_id__in=QualityClipDone.objects.filter(study=study, reviewer=reviewer)
                   .values("clip_id")))
    if after_unit is not None:
        qs, rc = qs.filter(unit__gt=after_unit), rc.filter(unit__gt=after_unit)
    # Units of recall clips that enough reviewers finished are done too.
    from django.db.models import Count
    done_counts = dict(QualityClipDone.objects.filter(study=study).values("clip_id")
                       .annotate(n=Count("id")).values_list("clip_id", "n"))
    units = sorted(set(qs.order_by("unit").values_list("unit", flat=True).distinct()[:limit])
                   | {u for u, c in rc.order_by("unit").values_list("unit", "clip_id")[:limit]
                      if done_counts.get(c, 0) < k})[:limit]
    if not units:
        return []
    questions = list(QualityQuestion.objects.filter(study=study, unit__in=units)
                     .exclude(answers__reviewer=reviewer)
                     .select_related("clip", "label").order_by("unit", "label__index", "id"))
    recall_clips = {c.clip_id: c for c in QualityRecallClip.objects.filter(study=study, unit__in=units)
                    .select_related("clip")}
    out: dict[int, Unit] = {}
    for q in questions:
        if q.answer_count >= k:
            continue
        out.setdefault(q.unit, Unit(q.unit, q.clip, [], q.clip_id in recall_clips)).questions.append(q)
    for rclip in recall_clips.values():
        if done_counts.get(rclip.clip_id, 0) < k and not QualityClipDone.objects.filter(
                study=study, clip_id=rclip.clip_id, reviewer=reviewer).exists():
            out.setdefault(rclip.unit, Unit(rclip.unit, rclip.clip, [], True)).recall = True
    return [out[u] for u in sorted(out)]


def open_studies_for(user) -> list[QualityStudy]:
    """Open studies the user may answer that still have something to ask them (the home
    page's cards)."""
    if not user_can_review(user):
        return []
    out = []
    for study in (QualityStudy.objects.filter(status=QualityStudy.Status.OPEN)
                  .select_related("dataset").order_by("created_at")):
        if may_answer(study=study, user=user) and quality_next_units(
                study=study, reviewer=user, limit=1):
            out.append(study)
    return out
