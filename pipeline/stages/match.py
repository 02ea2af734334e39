"""Stage 3: map free-form labels onto the 527 trainable AudioSet classes.

Tiers, tried in this order for each phrase; the first that succeeds gives the candidate:

- ``exact``: the normalised phrase (see :func:`normalize`) equals a key of the index. The
  keys of a class are its normalised full display name, every comma-separated part of it
  ("Male speech, man speaking" -> "male speech, man speaking", "male speech",
  "man speaking") and, for names with a parenthetical, the name without it ("Police car
  (siren)" -> "police car"; not for the bare "tapping", "scratching", "keyboard", which
  name everyday sounds). On a key collision the full name wins over a part and a part
  over a parenthesis-free variant; within one kind the class earlier in the standard
  order wins. The phrase is also tried without a leading article ("a", "an", "the") and
  without the wrappers "sound of ..." / "... sound" / "... noise". Score 1.0.
- ``fuzzy``: :func:`fuzzy_score` (best of rapidfuzz ``ratio``, ``token_sort_ratio`` and
  ``ratio`` without spaces) of the normalised phrase against every key; the best key at
  or above ``fuzzy_threshold`` (0-100) wins, ties to the key listed first. Score / 100.
- ``synonym``: sentence embeddings (a :class:`TextEmbedder`). Each class has a name vector
  per key text (full name and comma parts, as written) and one "name: description"
  vector, all embedded once in :meth:`LabelIndex.build`. A phrase's score for a class is
  ``w * max(cos(phrase, name vectors)) + (1 - w) * cos(phrase, description vector)`` with
  ``w = synonym_name_weight``; the best class at or above ``synonym_threshold`` wins.
  Score: that cosine mix.
- ``llm``: optional, outside :func:`match_labels`: :func:`build_llm_match_messages` makes
  the prompt and :func:`parse_llm_matches` validates the answer against the index.

Scores are on a 0..1 scale in every tier. Only trainable classes (``index`` not None)
enter the index, so no other MID can ever come out.

Dedupe by MID: a MID keeps the position of its first phrase; a later phrase for the same
MID replaces it only with a better tier (exact > fuzzy > synonym > llm) or, in the same
tier, a higher score.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from pipeline.backends.base import TextEmbedder
from pipeline.stages.embcache import cached_embeddings, unit_rows
from pipeline.stages.textutil import strip_think

TIERS = ("exact", "fuzzy", "synonym", "llm")
_TIER_RANK = {t: i for i, t in enumerate(TIERS)}
_EPS = 1e-6


@dataclass
class MatchConfig:
    fuzzy_threshold: float = 90.0  # fuzzy_score, 0..100
    synonym_threshold: float = 0.6  # cosine mix, see module docstring
    use_synonym: bool = True
    synonym_name_weight: float = 0.7


@dataclass
class Candidate:
    mid: str
    tier: str  # "exact" | "fuzzy" | "synonym" | "llm"
    phrase: str  # the free-form label it came from
    score: float  # 0..1


# --- normalisation ----------------------------------------------------------------------

_IRREGULAR = {
    "mice": "mouse",
    "geese": "goose",
    "men": "man",
    "women": "woman",
    "children": "child",
    "teeth": "tooth",
    "feet": "foot",
    "buses": "bus",
    "busses": "bus",
    "oxen": "ox",
    "leaves": "leaf",
    "wolves": "wolf",
    "knives": "knife",
}
_KEEP = {
    "bass",
    "glass",
    "chorus",
    "bus",
    "gas",
    "news",
    "series",
    "species",
    "lens",
    "this",
    "is",
    "was",
    "has",
    "its",
    "his",
    "us",
    "as",
    "yes",
    "always",
    "perhaps",
    "less",
    "across",
    "various",
    "ambulance",
    "canvas",
    "christmas",
    "dynamics",
    "acoustics",
    "physics",
    "electronics",
    "mathematics",
    "lyrics",
    "atlas",
    "iris",
    "tennis",
    "chassis",
}
_ES_ENDINGS = ("sses", "shes", "ches", "xes", "zzes")


def singular(word: str) -> str:
    """Crude English singular for label words: "dogs"->"dog", "barks"->"bark",
    "sirens"->"siren", "dishes"->"dish", "flies"->"fly"; "bass", "glass", "chorus",
    "bus" unchanged."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word in _KEEP or not word.endswith("s") or not word.isalpha():
        return word
    if word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(_ES_ENDINGS):
        return word[:-2]
    return word[:-1]


def normalize(text: str) -> str:
    """Lowercase, strip accents and punctuation (hyphens become spaces, apostrophes
    vanish), collapse spaces, singularise each word."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['\u2019\u2018`]", "", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(singular(w) for w in text.split())


def _split_outside_parens(name: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in name:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_PAREN = re.compile(r"\s*\([^)]*\)")
_NO_BARE = {"tapping", "scratching", "keyboard"}
_ARTICLES = ("a ", "an ", "the ", "some ")
_WRAP_PREFIXES = ("sound of ", "noise of ", "the sound of ", "a sound of ")
_WRAP_SUFFIXES = (" sound", " noise", " sound effect")


def name_texts(name: str) -> list[str]:
    """The key texts of one display name, as written: full name, comma parts (commas
    inside parentheses do not split), parenthesis-free variants (see module docstring)."""
    texts = [name] + _split_outside_parens(name)
    for t in list(texts):
        bare = _PAREN.sub("", t).strip()
        if bare and bare != t and normalize(bare) not in _NO_BARE:
            texts.append(bare)
    return list(dict.fromkeys(texts))


def _phrase_variants(key: str) -> list[str]:
    out = [key]
    for art in _ARTICLES:
        if key.startswith(art):
            out.append(key[len(art) :])
    for k in list(out):
        for pre in _WRAP_PREFIXES:
            if k.startswith(pre):
                out.append(k[len(pre) :])
        for suf in _WRAP_SUFFIXES:
            if k.endswith(suf):
                out.append(k[: -len(suf)])
    return [k for k in dict.fromkeys(out) if k]


# --- the index --------------------------------------------------------------------------


@dataclass
class LabelIndex:
    keys: dict[str, str]  # normalised key -> mid
    names: dict[str, str]  # mid -> display name (trainable classes only)
    embedder: TextEmbedder | None = None
    name_matrix: np.ndarray | None = None  # (rows, d), one row per key text
    name_row_class: np.ndarray | None = None  # (rows,) column of each row in desc_matrix
    desc_matrix: np.ndarray | None = None  # (classes, d), "name: description"
    class_mids: list[str] = field(default_factory=list)  # column order of desc_matrix
    _key_list: list[str] = field(init=False, repr=False)  # fuzzy choices, in key order

    def __post_init__(self) -> None:
        self._key_list = list(self.keys)

    @classmethod
    def build(
        cls,
        classes: Iterable,
        embedder: TextEmbedder | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> LabelIndex:
        """Index the trainable classes among ``classes`` (pass ``ontology.trainable``).
        With an embedder, the synonym vectors are computed here, once (and read from /
        written to ``cache_dir`` as .npy when given)."""
        trainable = [c for c in classes if c.index is not None]
        if not trainable:
            raise ValueError("no trainable classes (index is None for all)")
        names = {c.mid: c.name for c in trainable}
        keys: dict[str, str] = {}
        # priority: full names, then comma parts, then parenthesis-free variants
        per_class = [(c, name_texts(c.name)) for c in trainable]
        for kind in ("full", "part", "bare"):
            for c, texts in per_class:
                parts = _split_outside_parens(c.name)
                for t in texts:
                    k = "full" if t == c.name else ("part" if t in parts else "bare")
                    if k != kind:
                        continue
                    key = normalize(t)
                    if key and key not in keys:
                        keys[key] = c.mid
        index = cls(
            keys=keys, names=names, embedder=embedder, class_mids=[c.mid for c in trainable]
        )
        if embedder is not None:
            row_texts: list[str] = []
            row_class: list[int] = []
            for col, (_c, texts) in enumerate(per_class):
                for t in texts:
                    row_texts.append(t)
                    row_class.append(col)
            desc_texts = [f"{c.name}: {c.description}".strip() for c in trainable]
            matrix = cached_embeddings(
                embedder, row_texts + desc_texts, cache_dir, kind="labelindex"
            )
            index.name_matrix = matrix[: len(row_texts)]
            index.desc_matrix = matrix[len(row_texts) :]
            index.name_row_class = np.asarray(row_class, dtype=np.int64)
        return index

    @property
    def mids(self) -> set[str]:
        return set(self.names)

    def exact(self, phrase: str) -> str | None:
        """MID whose key equals the normalised phrase (or one of its variants)."""
        for key in _phrase_variants(normalize(phrase)):
            if key in self.keys:
                return self.keys[key]
        return None

    def fuzzy(self, phrase: str, threshold: float) -> tuple[str, float] | None:
        key = normalize(phrase)
        if not key:
            return None
        best = process.extractOne(key, self._key_list, scorer=fuzzy_score, score_cutoff=threshold)
        if best is None:
            return None
        return self.keys[best[0]], float(best[1]) / 100.0

    def synonym_scores(self, phrases: Sequence[str], name_weight: float = 0.7) -> np.ndarray:
        """(len(phrases), classes) cosine mix; columns follow ``class_mids``."""
        if self.embedder is None or self.name_matrix is None:
            raise ValueError("index built without an embedder")
        q = unit_rows(self.embedder.embed(list(phrases)))
        by_row = q @ self.name_matrix.T
        name_best = np.full((len(phrases), len(self.class_mids)), -1.0, dtype=np.float32)
        np.maximum.at(name_best.T, self.name_row_class, by_row.T)
        return name_weight * name_best + (1.0 - name_weight) * (q @ self.desc_matrix.T)


def fuzzy_score(a: str, b: str, *, processor=None, score_cutoff: float | None = None) -> float:
    """Best of rapidfuzz ``ratio``, ``token_sort_ratio`` (word order) and ``ratio`` with
    spaces removed ("hihat" / "hi hat"), 0..100."""
    score = max(
        fuzz.ratio(a, b),
        fuzz.token_sort_ratio(a, b),
        fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")),
    )
    return score if score_cutoff is None or score >= score_cutoff else 0.0


def _better(new: Candidate, old: Candidate) -> bool:
    rn, ro = _TIER_RANK[new.tier], _TIER_RANK[old.tier]
    return rn < ro or (rn == ro and new.score > old.score)


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per MID, at its first position, the best tier/score winning."""
    out: dict[str, Candidate] = {}
    for c in candidates:
        old = out.get(c.mid)
        if old is None or _better(c, old):
            out[c.mid] = c  # dict keeps the first insertion position
    return list(out.values())


def match_labels(
    phrases: Sequence[str], index: LabelIndex, cfg: MatchConfig | None = None
) -> list[Candidate]:
    """Map phrases onto trainable classes, tiers exact -> fuzzy -> synonym (one candidate
    per matched phrase; unmatched phrases give none), then dedupe by MID."""
    cfg = cfg or MatchConfig()
    found: list[Candidate | None] = []
    pending: list[int] = []
    for i, phrase in enumerate(phrases):
        mid = index.exact(phrase)
        if mid is not None:
            found.append(Candidate(mid, "exact", phrase, 1.0))
            continue
        fz = index.fuzzy(phrase, cfg.fuzzy_threshold)
        if fz is not None:
            found.append(Candidate(fz[0], "fuzzy", phrase, round(fz[1], 4)))
            continue
        found.append(None)
        if normalize(phrase):
            pending.append(i)
    if pending and cfg.use_synonym and index.embedder is not None:
        scores = index.synonym_scores([phrases[i] for i in pending], cfg.synonym_name_weight)
        for row, i in zip(scores, pending, strict=True):
            col = int(np.argmax(row))
            if float(row[col]) >= cfg.synonym_threshold - _EPS:  # float32 noise
                found[i] = Candidate(
                    index.class_mids[col], "synonym", phrases[i], round(float(row[col]), 4)
                )
    return dedupe(c for c in found if c is not None)


# --- optional LLM tier ------------------------------------------------------------------

LLM_MATCH_SYSTEM = (
    "You map free-form sound labels onto the classes of the AudioSet ontology. Use only "
    "class names from the list you are given, spelled exactly as listed."
)
LLM_MATCH_TEMPLATE = (
    "AudioSet classes, one per line:\n{classes}\n\n"
    "Free-form labels:\n{phrases}\n\n"
    "For each free-form label, give the AudioSet class names from the list above that "
    "mean the same sound (usually one; none if nothing fits). Answer with a JSON object "
    "only, mapping each free-form label to a list of class names, for example: "
    '{{"dog barking": ["Bark"], "quarterly report": []}}'
)


def build_llm_match_messages(phrases: Sequence[str], classes: Iterable) -> list[dict]:
    """Prompt for the optional LLM tier: the trainable class names and the phrases."""
    names = [c.name for c in classes if c.index is not None]
    user = LLM_MATCH_TEMPLATE.format(
        classes="\n".join(names), phrases="\n".join(f"- {p}" for p in phrases)
    )
    return [{"role": "system", "content": LLM_MATCH_SYSTEM}, {"role": "user", "content": user}]


_MID = re.compile(r"^/[mgt]/[0-9a-z_]+$")
_ARROW = re.compile(r"\s*(?:->|=>|\u2192|-->|\|)\s*")
_NONE = {"", "none", "null", "n a", "na", "no match", "nothing", "no class", "unknown"}


def _resolve(target: str, index: LabelIndex) -> str | None:
    t = target.strip().strip("\"'`*[](){}., ")
    if _MID.match(t):
        return t if t in index.names else None
    if normalize(t) in _NONE:
        return None
    # class names, e.g. "Bark", "Male speech, man speaking"; a MID in parentheses
    m = re.search(r"\((/[mgt]/[0-9a-z_]+)\)", target)
    if m and m.group(1) in index.names:
        return m.group(1)
    key = normalize(t)
    return index.keys.get(key)


def _targets(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        for k in ("mid", "class", "label", "name", "match", "matches", "classes"):
            if k in value:
                return _targets(value[k])
        return []
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            out.extend(_targets(v))
        return out
    return []


def _pairs_from_json(text: str) -> list[tuple[str, str]] | None:
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(text[start : end + 1])
        except ValueError:
            continue
        pairs: list[tuple[str, str]] = []
        if isinstance(data, dict):
            for phrase, value in data.items():
                pairs.extend((str(phrase), t) for t in _targets(value))
        elif isinstance(data, list):
            for item in data:
                if isinstance(item, dict):
                    phrase = str(
                        item.get("phrase") or item.get("label_in") or item.get("input") or ""
                    )
                    value = {
                        k: v for k, v in item.items() if k not in ("phrase", "label_in", "input")
                    }
                    pairs.extend((phrase, t) for t in _targets(value))
                else:
                    pairs.extend(("", t) for t in _targets(item))
        return pairs
    return None


def _pairs_from_lines(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*\u2022]+|\d{1,3}[.)])\s*", "", line).strip()
        if not line:
            continue
        parts = _ARROW.split(line, maxsplit=1)
        if len(parts) == 2:
            phrase, rhs = parts
        elif ":" in line:
            phrase, rhs = line.split(":", 1)
        else:
            phrase, rhs = "", line
        phrase = phrase.strip().strip("\"'`*")
        pairs.extend((phrase, t) for t in rhs.split(";"))  # no class name holds a ";"
    return pairs


def parse_llm_matches(text: str | None, index: LabelIndex) -> list[Candidate]:
    """Candidates (tier "llm", score 1.0) from an LLM answer: think blocks stripped; JSON
    ({"phrase": ["Class", ...]} or a list of {"phrase", "class"/"mid"} objects) or lines
    "phrase -> Class name" / "phrase: /m/xxxx" / bare class names. Every target must be a
    trainable class name (exact tier) or a trainable MID; anything else is dropped."""
    body = strip_think(text)
    body = re.sub(r"```[ \t]*[\w+-]*", "\n", body)
    pairs = _pairs_from_json(body)
    if pairs is None:
        pairs = _pairs_from_lines(body)
    out: list[Candidate] = []
    for phrase, target in pairs:
        mid = _resolve(target, index)
        if mid is not None:
            out.append(Candidate(mid, "llm", phrase.strip(), 1.0))
        elif "," in target:
            # several names on one line ("Bark, Dog"): the whole is no name, try each piece
            for piece in target.split(","):
                pmid = _resolve(piece, index)
                if pmid is not None:
                    out.append(Candidate(pmid, "llm", phrase.strip(), 1.0))
    return dedupe(out)
