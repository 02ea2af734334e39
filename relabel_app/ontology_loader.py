"""Load the AudioSet ontology into Label rows. Idempotent: a second run changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from .models import Label
from .ontology_source import load_ontology

LABEL_FIELDS = ("name", "description", "index", "abstract", "blacklisted")


@dataclass
class OntologyLoadReport:
    classes: int
    trainable: int
    created: int
    updated: int
    edges_added: int
    edges_removed: int


@transaction.atomic
def ontology_load(*, path: str | Path | None = None) -> OntologyLoadReport:
    onto = load_ontology(path)
    existing = {label.mid: label for label in Label.objects.all()}
    # Free every index first: a reordered ontology must not collide on the unique index.
    wanted = {c.mid: c for c in onto.classes}
    to_create, to_update = [], []
    for c in onto.classes:
        values = {
            "name": c.name,
            "description": c.description,
            "index": c.index,
            "abstract": c.abstract,
            "blacklisted": c.blacklisted,
        }
        label = existing.get(c.mid)
        if label is None:
            to_create.append(Label(mid=c.mid, **values))
        elif any(getattr(label, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(label, k, v)
            to_update.append(label)
    if to_update:
        Label.objects.filter(pk__in=[lb.pk for lb in to_update]).update(index=None)
        Label.objects.bulk_update(to_update, LABEL_FIELDS)
    Label.objects.bulk_create(to_create)

    ids = dict(Label.objects.filter(mid__in=wanted).values_list("mid", "id"))
    Edge = Label.parents.through
    want_edges = {
        (ids[child], ids[c.mid])
        for c in onto.classes
        for child in c.child_ids
        if child in ids
    }
    have_edges = set(Edge.objects.values_list("from_label_id", "to_label_id"))
    add = want_edges - have_edges
    remove = have_edges - want_edges
    if remove:
        for child_id, parent_id in remove:
            Edge.objects.filter(from_label_id=child_id, to_label_id=parent_id).delete()
    Edge.objects.bulk_create([Edge(from_label_id=a, to_label_id=b) for a, b in add])
    return OntologyLoadReport(
        classes=len(onto.classes),
        trainable=len(onto.trainable),
        created=len(to_create),
        updated=len(to_update),
        edges_added=len(add),
        edges_removed=len(remove),
    )
