"""A scripted oracle for a quality study (the note's published-data demonstration):
answers every question as one label source says, through the same answering service the
study screen uses, and prints the population figures the estimates should cover.

    python scripts/quality_oracle.py --dataset audioset_r_eval --study r-vs-original \
        --truth run:1 --reviewer oracle

"The truth" here is a label source (e.g. AudioSet-R): a question is answered yes exactly
when that source carries the pair, recall clips get no added class (the truth's labels are
in the pool already). Then the truth's precision and recall are 100 % by construction, and
every other source's true precision and recall are known exactly from the files, so the
report's intervals can be checked against them: the mechanics and the numbers'
consistency, not a claim about which labels are right."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")


def main() -> int:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from curation.quality.answers import quality_answers_record, quality_clips_done
    from curation.quality.models import QualityQuestion, QualityRecallClip, QualityStudy
    from curation.quality.sampling import parse_sources

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--truth", required=True, help="The source taken as the truth: run:ID or original.")
    p.add_argument("--reviewer", default="oracle")
    a = p.parse_args()
    study = QualityStudy.objects.filter(dataset__name=a.dataset, name=a.study).first()
    if study is None:
        print(f"no study {a.study!r} in dataset {a.dataset!r}", file=sys.stderr)
        return 1
    spec = parse_sources(dataset=study.dataset, sources=[a.truth])[0]
    user, _ = get_user_model().objects.get_or_create(username=a.reviewer)
    user.groups.add(Group.objects.get_or_create(name="reviewer")[0])

    def truth_sql(alias: str) -> str:
        if spec.run_id is None:
            return f"SELECT clip_id, label_id FROM relabel_app_cliplabel WHERE clip_id = {alias}.clip_id"
        return (f"SELECT clip_id, label_id FROM pipeline_candidate WHERE run_id = {spec.run_id} "
                f"AND kept AND selected AND clip_id = {alias}.clip_id")

    with connection.cursor() as cur:
        cur.execute(f"""
            SELECT q.id, EXISTS (SELECT 1 FROM ({truth_sql('q')}) t WHERE t.label_id = q.label_id)
            FROM {QualityQuestion._meta.db_table} q WHERE q.study_id = %s""", [study.pk])
        answers = [(qid, "accept" if yes else "reject") for qid, yes in cur.fetchall()]
    quality_answers_record(study=study, reviewer=user, answers=answers)
    clips = [rc.clip for rc in QualityRecallClip.objects.filter(study=study).select_related("clip")]
    quality_clips_done(study=study, clips=clips, reviewer=user)
    print(f"answered {len(answers)} questions, finished {len(clips)} recall clips as {a.truth} says")

    # Population figures over the whole dataset (trainable classes), for each source.
    with connection.cursor() as cur:
        for source in study.sources:
            s = parse_sources(dataset=study.dataset, sources=[source])[0]
            if s.run_id is None and s.name == "original":
                src = ("SELECT cl.clip_id, cl.label_id FROM relabel_app_cliplabel cl JOIN "
                       "relabel_app_clip c ON c.id = cl.clip_id WHERE c.dataset_id = %(ds)s")
            elif s.run_id is not None:
                src = (f"SELECT DISTINCT clip_id, label_id FROM pipeline_candidate "
                       f"WHERE run_id = {s.run_id} AND kept AND selected")
            else:
                continue
            tru = (src if spec.name == s.name else
                   ("SELECT cl.clip_id, cl.label_id FROM relabel_app_cliplabel cl JOIN "
                    "relabel_app_clip c ON c.id = cl.clip_id WHERE c.dataset_id = %(ds)s")
                   if spec.run_id is None else
                   f"SELECT DISTINCT clip_id, label_id FROM pipeline_candidate "
                   f"WHERE run_id = {spec.run_id} AND kept AND selected")
            cur.execute(f"""
                WITH s AS ({src}), t AS ({tru}),
                s2 AS (SELECT s.* FROM s JOIN relabel_app_label l ON l.id = s.label_id WHERE l.index IS NOT NULL),
                t2 AS (SELECT t.* FROM t JOIN relabel_app_label l ON l.id = t.label_id WHERE l.index IS NOT NULL)
                SELECT (SELECT count(*) FROM s2), (SELECT count(*) FROM t2),
                       (SELECT count(*) FROM s2 JOIN t2 USING (clip_id, label_id))""",
                        {"ds": study.dataset_id})
            n_s, n_t, both = cur.fetchone()
            print(f"population {source}: precision {100 * both / n_s:.1f} % "
                  f"({both}/{n_s}), recall {100 * both / n_t:.1f} % ({both}/{n_t}) "
                  f"against {a.truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
