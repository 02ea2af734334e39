"""Cheaper slot inserts (a 2M-clip queue build inserts 2M slots in one statement):

- QueueSlot.dataset keeps its index and Django's cascade but loses its database foreign key
  constraint: its deferred check ran once per inserted slot at COMMIT (10 s of a 2M-clip
  build), every time for the same dataset row. The column is the clip's dataset, written
  only by review.queue.queue_sync, which takes one key-share lock on the dataset row for
  its transaction instead. The clip constraint stays.
- leased_to and done_by are indexed only where set: whole-column indexes took one entry
  per new slot, always empty (two of the eight index inserts per slot). What a user's
  deletion looks up (SET_NULL: WHERE leased_to_id IN (...)) the partial indexes serve."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("relabel_app", "0005_gold_settings_db_defaults"),
        ("review", "0012_clip_note"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="queueslot",
            index=models.Index(condition=models.Q(("leased_to__isnull", False)),
                               fields=["leased_to"], name="queueslot_leased_to"),
        ),
        migrations.AddIndex(
            model_name="queueslot",
            index=models.Index(condition=models.Q(("done_by__isnull", False)),
                               fields=["done_by"], name="queueslot_done_by"),
        ),
        migrations.AlterField(
            model_name="queueslot",
            name="dataset",
            field=models.ForeignKey(db_constraint=False,
                                    on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="relabel_app.dataset"),
        ),
        migrations.AlterField(
            model_name="queueslot",
            name="done_by",
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="queueslot",
            name="leased_to",
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to=settings.AUTH_USER_MODEL),
        ),
    ]
