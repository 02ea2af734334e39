"""The ontology as the app needs it (review, curation, the API): every label's name,
description, flags, ancestors and paths ("Animal > Domestic animals, pets > Dog > Bark").

Built once per process from the database (two queries) and kept in memory: 632 classes
are a few hundred kilobytes, and the clip page must not query the ontology per label.
The cache is dropped when a Label or a parent edge is saved through the ORM, and rebuilt
when asked for an id it does not know (a re-import with bulk_create gives new ids)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .models import Label

PATH_SEP = " > "


@dataclass(frozen=True)
class LabelInfo:
    id: int
    mid: str
    name: str
    description: str
    index: int | None
    abstract: bool
    blacklisted: bool
    parent_ids: tuple[int, ...]
    ancestor_ids: frozenset[int]
    # Every root-to-label path, each a tuple of names ending with this label's name.
    paths: tuple[tuple[str, ...], ...]

    @property
    def trainable(self) -> bool:
        return self.index is not None

    @property
    def path(self) -> str:
        """The first path (shortest, then alphabetical), as "A > B > C"."""
        return PATH_SEP.join(self.paths[0]) if self.paths else self.name

    @property
    def other_paths(self) -> list[str]:
        return [PATH_SEP.join(p) for p in self.paths[1:]]


@dataclass(frozen=True)
class Ontology:
    by_id: dict[int, LabelInfo]
    by_mid: dict[str, LabelInfo]

    def get(self, label_id: int) -> LabelInfo | None:
        return self.by_id.get(label_id)


_lock = threading.Lock()
_cache: Ontology | None = None


def _build() -> Ontology:
    rows = list(
        Label.objects.values_list(
            "id", "mid", "name", "description", "index", "abstract", "blacklisted"
        )
    )
    edges = list(Label.parents.through.objects.values_list("from_label_id", "to_label_id"))
    parents: dict[int, list[int]] = {}
    for child, parent in edges:
        parents.setdefault(child, []).append(parent)
    names = {r[0]: r[2] for r in rows}

    paths_memo: dict[int, tuple[tuple[str, ...], ...]] = {}
    ancestors_memo: dict[int, frozenset[int]] = {}

    def paths_of(label_id: int, seen: frozenset[int]) -> tuple[tuple[str, ...], ...]:
        if label_id in paths_memo:
            return paths_memo[label_id]
        ps = [p for p in parents.get(label_id, ()) if p not in seen and p in names]
        if not ps:
            result: tuple[tuple[str, ...], ...] = ((names[label_id],),)
        else:
            found = [
                up + (names[label_id],)
                for p in ps
                for up in paths_of(p, seen | {label_id})
            ]
            result = tuple(sorted(set(found), key=lambda t: (len(t), t)))
        paths_memo[label_id] = result
        return result

    def ancestors_of(label_id: int, seen: frozenset[int]) -> frozenset[int]:
        if label_id in ancestors_memo:
            return ancestors_memo[label_id]
        out: set[int] = set()
        for p in parents.get(label_id, ()):
            if p in seen or p not in names:
                continue
            out.add(p)
            out |= ancestors_of(p, seen | {label_id})
        ancestors_memo[label_id] = frozenset(out)
        return ancestors_memo[label_id]

    infos = {}
    for lid, mid, name, description, index, abstract, blacklisted in rows:
        infos[lid] = LabelInfo(
            id=lid, mid=mid, name=name, description=description, index=index,
            abstract=abstract, blacklisted=blacklisted,
            parent_ids=tuple(parents.get(lid, ())),
            ancestor_ids=ancestors_of(lid, frozenset()),
            paths=paths_of(lid, frozenset()),
        )
    return Ontology(by_id=infos, by_mid={i.mid: i for i in infos.values()})


def ontology(*, need_ids=()) -> Ontology:
    """The cached ontology; rebuilt when one of ``need_ids`` is unknown to it."""
    global _cache
    onto = _cache
    if onto is not None and all(i in onto.by_id for i in need_ids):
        return onto
    with _lock:
        onto = _cache
        if onto is None or not all(i in onto.by_id for i in need_ids):
            onto = _cache = _build()
    return onto


def ontology_clear() -> None:
    global _cache
    with _lock:
        _cache = None


@receiver(post_save, sender=Label)
@receiver(post_delete, sender=Label)
def _label_changed(**_kwargs) -> None:
    ontology_clear()


@receiver(m2m_changed, sender=Label.parents.through)
def _edges_changed(**_kwargs) -> None:
    ontology_clear()
