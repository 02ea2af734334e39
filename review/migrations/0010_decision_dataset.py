"""Decision.dataset: the clip's dataset copied onto each decision (the adjudication queue
and the audits select a dataset's decisions without a lookup of each decision's clip).

Not atomic: the backfill commits in batches of BATCH decisions by id, so a large table is
never locked whole nor rewritten in one transaction; a rerun after a failure goes on where
it stopped (only rows still without a dataset are updated)."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 20_000

# A decision inserted without its dataset (raw SQL written before the column: bulk loads,
# benchmarks, other branches) gets its clip's, so NOT NULL never rejects it.
FILL_SQL = """
CREATE FUNCTION review_decision_fill_dataset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.dataset_id IS NULL THEN
        SELECT c.dataset_id INTO NEW.dataset_id FROM relabel_app_clip c WHERE c.id = NEW.clip_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER review_decision_fill_dataset BEFORE INSERT ON review_decision
    FOR EACH ROW WHEN (NEW.dataset_id IS NULL) EXECUTE FUNCTION review_decision_fill_dataset();
-- Also under session_replication_role = replica (bulk loads skipping foreign-key checks).
ALTER TABLE review_decision ENABLE ALWAYS TRIGGER review_decision_fill_dataset;
"""
UNFILL_SQL = """
DROP TRIGGER IF EXISTS review_decision_fill_dataset ON review_decision;
DROP FUNCTION IF EXISTS review_decision_fill_dataset();
"""


def backfill(apps, schema_editor):
    conn = schema_editor.connection
    with conn.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM review_decision WHERE dataset_id IS NULL")
        lo, hi = cur.fetchone()
    if lo is None:
        return
    # Under migrate (atomic = False) each UPDATE commits on its own.
    for start in range(lo, hi + 1, BATCH):
        with conn.cursor() as cur:
            cur.execute(
                """UPDATE review_decision d SET dataset_id = c.dataset_id
                   FROM relabel_app_clip c
                   WHERE c.id = d.clip_id AND d.id >= %s AND d.id < %s
                     AND d.dataset_id IS NULL""",
                [start, start + BATCH],
            )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('relabel_app', '0005_gold_settings_db_defaults'),
        ('review', '0009_decision_source'),
    ]

    operations = [
        migrations.AddField(
            model_name='decision',
            name='dataset',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='relabel_app.dataset'),
        ),
        migrations.RunSQL(FILL_SQL, UNFILL_SQL),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name='decision',
            name='dataset',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='relabel_app.dataset'),
        ),
        migrations.AddIndex(
            model_name='decision',
            index=models.Index(fields=['dataset', 'clip', 'label'], include=('verdict', 'reviewer'), name='decision_dataset_pair'),
        ),
    ]
