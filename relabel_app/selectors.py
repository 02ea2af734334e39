"""Reads of the core domain."""

from __future__ import annotations

from django.db.models import Count

from .models import Dataset, Label


def dataset_list_with_counts():
    return Dataset.objects.annotate(clip_count=Count("clips")).order_by("name")


def label_ancestor_ids(label_id: int) -> set[int]:
    """Ids of all ancestors of a label (several parents allowed), one recursive query."""
    from django.db import connection

    table = Label.parents.through._meta.db_table
    sql = f"""
        WITH RECURSIVE up(id) AS (
            SELECT to_label_id FROM {table} WHERE from_label_id = %s
            UNION
            SELECT e.to_label_id FROM {table} e JOIN up ON e.from_label_id = up.id
        ) SELECT id FROM up
    """
    with connection.cursor() as cur:
        cur.execute(sql, [label_id])
        return {r[0] for r in cur.fetchall()}


def label_descendant_ids(label_id: int) -> set[int]:
    from django.db import connection

    table = Label.parents.through._meta.db_table
    sql = f"""
        WITH RECURSIVE down(id) AS (
            SELECT from_label_id FROM {table} WHERE to_label_id = %s
            UNION
            SELECT e.from_label_id FROM {table} e JOIN down ON e.to_label_id = down.id
        ) SELECT id FROM down
    """
    with connection.cursor() as cur:
        cur.execute(sql, [label_id])
        return {r[0] for r in cur.fetchall()}
