"""Search over all 632 ontology classes for the "Add a label" box: names and descriptions,
prefix and fuzzy. In memory (relabel_app.label_info cache): no query per keystroke."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from relabel_app.label_info import LabelInfo, ontology

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class SearchHit:
    info: LabelInfo
    score: float
    how: str  # "name", "prefix", "word", "substring", "fuzzy", "description"


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def label_search(*, query: str, limit: int = 12) -> list[SearchHit]:
    """Best matches first: exact name (or MID), name prefix, a word of the name starting
    with the query, substring of the name, fuzzy name match (typos), then description."""
    raw = query.strip()
    q = _norm(raw)
    if not q:
        return []
    hits: list[SearchHit] = []
    for info in ontology().by_id.values():
        name = _norm(info.name)
        if q == name or raw == info.mid:
            hits.append(SearchHit(info, 1000, "name"))
            continue
        if name.startswith(q):
            hits.append(SearchHit(info, 900 - len(name) / 10, "prefix"))
            continue
        if any(w.startswith(q) for w in name.split()) or f" {q}" in f" {name}":
            hits.append(SearchHit(info, 800 - len(name) / 10, "word"))
            continue
        if q in name:
            hits.append(SearchHit(info, 700 - len(name) / 10, "substring"))
            continue
        score = fuzz.WRatio(q, name) if len(q) >= 3 else 0
        if score >= 80:
            hits.append(SearchHit(info, 5 * score, "fuzzy"))
            continue
        if len(q) >= 3:
            desc = _norm(info.description)
            if f" {q}" in f" {desc}":
                hits.append(SearchHit(info, 300, "description"))
            elif len(q) >= 5 and fuzz.partial_ratio(q, desc) >= 90:
                hits.append(SearchHit(info, 200, "description"))
    hits.sort(key=lambda h: (-h.score, h.info.name))
    return hits[:limit]
