"""PairVotes: each (clip, label) pair's counted verdicts and whether the label is an
original of the clip, kept by statement triggers (with transition tables: one set-based
statement per write, also for bulk loads) on review_decision and relabel_app_cliplabel;
the partial index review_pairvotes_disputed holds the disputed pairs only, which the
adjudication queue reads instead of aggregating every decision of the dataset.

Atomic: the triggers are created first (their lock holds off decision writes until the
commit), then the existing decisions are counted in batches by id (a pair's decisions in
two batches add up through the upsert)."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 20_000

# One upsert of the counted rows of a decision table (the transition table or a batch).
def _add_sql(source: str) -> str:
    return f"""
    INSERT INTO review_pairvotes AS p (dataset_id, clip_id, label_id, n_accept, n_reject,
                                       n_unsure, original)
    SELECT g.dataset_id, g.clip_id, g.label_id, g.a, g.r, g.u,
           EXISTS (SELECT 1 FROM relabel_app_cliplabel o
                   WHERE o.clip_id = g.clip_id AND o.label_id = g.label_id)
    FROM (SELECT dataset_id, clip_id, label_id,
                 count(*) FILTER (WHERE verdict = 'accept') AS a,
                 count(*) FILTER (WHERE verdict = 'reject') AS r,
                 count(*) FILTER (WHERE verdict = 'unsure') AS u
          FROM {source} GROUP BY dataset_id, clip_id, label_id) g
    ORDER BY g.clip_id, g.label_id
    ON CONFLICT (clip_id, label_id) DO UPDATE
        SET n_accept = p.n_accept + EXCLUDED.n_accept,
            n_reject = p.n_reject + EXCLUDED.n_reject,
            n_unsure = p.n_unsure + EXCLUDED.n_unsure"""


TRIGGERS_SQL = f"""
CREATE FUNCTION review_pairvotes_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {_add_sql("new_rows")};
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE review_pairvotes p
        SET n_accept = p.n_accept - g.a, n_reject = p.n_reject - g.r,
            n_unsure = p.n_unsure - g.u
        FROM (SELECT clip_id, label_id,
                     count(*) FILTER (WHERE verdict = 'accept') AS a,
                     count(*) FILTER (WHERE verdict = 'reject') AS r,
                     count(*) FILTER (WHERE verdict = 'unsure') AS u
              FROM old_rows GROUP BY clip_id, label_id) g
        WHERE p.clip_id = g.clip_id AND p.label_id = g.label_id;
        DELETE FROM review_pairvotes p
        USING (SELECT DISTINCT clip_id, label_id FROM old_rows) g
        WHERE p.clip_id = g.clip_id AND p.label_id = g.label_id
          AND p.n_accept = 0 AND p.n_reject = 0 AND p.n_unsure = 0;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER review_pairvotes_ins AFTER INSERT ON review_decision
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_decisions();
CREATE TRIGGER review_pairvotes_upd AFTER UPDATE ON review_decision
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_decisions();
CREATE TRIGGER review_pairvotes_del AFTER DELETE ON review_decision
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_decisions();

CREATE FUNCTION review_pairvotes_originals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Imports add millions of original labels; pairs exist only where reviewers voted.
    IF NOT EXISTS (SELECT 1 FROM review_pairvotes) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE review_pairvotes p SET original = false
        FROM old_rows o WHERE p.clip_id = o.clip_id AND p.label_id = o.label_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE review_pairvotes p SET original = true
        FROM new_rows o WHERE p.clip_id = o.clip_id AND p.label_id = o.label_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER review_pairvotes_orig_ins AFTER INSERT ON relabel_app_cliplabel
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_originals();
CREATE TRIGGER review_pairvotes_orig_upd AFTER UPDATE ON relabel_app_cliplabel
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_originals();
CREATE TRIGGER review_pairvotes_orig_del AFTER DELETE ON relabel_app_cliplabel
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION review_pairvotes_originals();

-- Also under session_replication_role = replica, which bulk loads set to skip per-row
-- foreign-key checks (segment_import merging labels into an existing dataset's clips).
ALTER TABLE review_decision ENABLE ALWAYS TRIGGER review_pairvotes_ins;
ALTER TABLE review_decision ENABLE ALWAYS TRIGGER review_pairvotes_upd;
ALTER TABLE review_decision ENABLE ALWAYS TRIGGER review_pairvotes_del;
ALTER TABLE relabel_app_cliplabel ENABLE ALWAYS TRIGGER review_pairvotes_orig_ins;
ALTER TABLE relabel_app_cliplabel ENABLE ALWAYS TRIGGER review_pairvotes_orig_upd;
ALTER TABLE relabel_app_cliplabel ENABLE ALWAYS TRIGGER review_pairvotes_orig_del;

CREATE INDEX review_pairvotes_disputed ON review_pairvotes (dataset_id, clip_id, label_id)
    INCLUDE (n_accept, n_reject, n_unsure, original)
    WHERE ((n_accept > 0 AND n_reject > 0) OR n_unsure > 0
           OR (original AND n_reject > n_accept));
"""

UNTRIGGERS_SQL = """
DROP TRIGGER IF EXISTS review_pairvotes_ins ON review_decision;
DROP TRIGGER IF EXISTS review_pairvotes_upd ON review_decision;
DROP TRIGGER IF EXISTS review_pairvotes_del ON review_decision;
DROP TRIGGER IF EXISTS review_pairvotes_orig_ins ON relabel_app_cliplabel;
DROP TRIGGER IF EXISTS review_pairvotes_orig_upd ON relabel_app_cliplabel;
DROP TRIGGER IF EXISTS review_pairvotes_orig_del ON relabel_app_cliplabel;
DROP FUNCTION IF EXISTS review_pairvotes_decisions();
DROP FUNCTION IF EXISTS review_pairvotes_originals();
DROP INDEX IF EXISTS review_pairvotes_disputed;
"""


def backfill(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM review_decision")
        lo, hi = cur.fetchone()
        if lo is None:
            return
        for start in range(lo, hi + 1, BATCH):
            cur.execute(_add_sql(
                f"(SELECT * FROM review_decision WHERE id >= {int(start)} "
                f"AND id < {int(start + BATCH)}) d"))


class Migration(migrations.Migration):

    dependencies = [
        ('relabel_app', '0005_gold_settings_db_defaults'),
        ('review', '0010_decision_dataset'),
    ]

    operations = [
        migrations.CreateModel(
            name='PairVotes',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('n_accept', models.IntegerField(default=0)),
                ('n_reject', models.IntegerField(default=0)),
                ('n_unsure', models.IntegerField(default=0)),
                ('original', models.BooleanField(default=False)),
                ('clip', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='relabel_app.clip')),
                ('dataset', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='relabel_app.dataset')),
                ('label', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='relabel_app.label')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('clip', 'label'), name='pairvotes_unique_pair')],
                'indexes': [models.Index(fields=['dataset'], name='pairvotes_dataset')],
            },
        ),
        migrations.RunSQL(TRIGGERS_SQL, UNTRIGGERS_SQL),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
    ]
