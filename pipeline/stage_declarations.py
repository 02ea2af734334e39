"""The chain's stages as plain data, in chain order: each stage's name (also the
`<name>_status` column of ClipResult and the Celery task `pipeline.<name>`), its queue, its
config class and profile section, and the backend roles it uses.

pipeline.models builds the status columns from these declarations and pipeline.profiles
resolves the config sections with them; the write code of each stage (pipeline.chain)
subclasses its declaration and may import the models. This module imports no Django and
none of the Django side of the pipeline (an import-linter contract in pyproject.toml keeps
it so), so the models and the chain do not import each other.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from pipeline.stages.caption import CaptionConfig
from pipeline.stages.filter import FilterConfig
from pipeline.stages.match import MatchConfig
from pipeline.stages.predict import PredictConfig

# Sized by ClipResult.error_stage, which holds the name of the stage a clip failed in.
MAX_NAME = 8


class StageDeclaration:
    """What the rest of the project knows of a stage, as class attributes (a stage's
    write code, pipeline.chain.Stage, is a subclass)."""

    name: ClassVar[str] = ""
    queue: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None  # a dataclass read from the profile section
    config_key: ClassVar[str | None] = None  # profile section; the stage's name by default
    backends: ClassVar[tuple[str, ...]] = ()  # profile backend roles this stage may use

    @classmethod
    def config_section(cls) -> str:
        return cls.config_key or cls.name

    @classmethod
    def resolve_config(cls, values: dict) -> dict:
        """The profile section as a run stores it: every field of the config class with its
        default where the file gave none (so the run says every prompt and threshold), and
        any other key the file gave, kept as written."""
        if cls.config_class is None:
            return dict(values)
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        cfg = cls.config_class(**{k: v for k, v in values.items() if k in names})
        return {**dataclasses.asdict(cfg), **{k: v for k, v in values.items() if k not in names}}

    @classmethod
    def read_config(cls, profile: dict):
        """The stage's config from a resolved profile (a run's config)."""
        values = profile.get(cls.config_section(), {}) or {}
        if cls.config_class is None:
            return dict(values)
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        return cls.config_class(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def status_field(cls) -> str:
        return f"{cls.name}_status"


class Caption(StageDeclaration):
    """Stage 1: caption each clip with the audio chat model."""

    name = "caption"
    queue = "audio"
    config_class = CaptionConfig
    backends = ("audio_chat",)


class Predict(StageDeclaration):
    """Stage 2: free-form sound labels from the caption summary, best-of-N attempts."""

    name = "predict"
    queue = "llm"
    config_class = PredictConfig
    backends = ("text_chat",)


class Match(StageDeclaration):
    """Stage 3: map the free-form labels onto the trainable classes (the candidates)."""

    name = "match"
    queue = "llm"
    config_class = MatchConfig
    backends = ("text_embedder", "match_llm")


class Filter(StageDeclaration):
    """Stage 4: CLAP scores of the candidates, the threshold, best-of-N's choice."""

    name = "filter"
    queue = "clap"
    config_class = FilterConfig
    backends = ("clap",)


BUILTIN: tuple[type[StageDeclaration], ...] = (Caption, Predict, Match, Filter)

_STAGES: list[type[StageDeclaration]] = list(BUILTIN)


def register(decl: type[StageDeclaration], *, after: str | None = None) -> type[StageDeclaration]:
    """Add a stage to the chain: at the end, or right after the stage named `after`."""
    if not decl.name or len(decl.name) > MAX_NAME or not decl.name.isidentifier():
        raise ValueError(f"stage name {decl.name!r}: an identifier of 1 to {MAX_NAME} characters")
    if not decl.queue:
        raise ValueError(f"stage {decl.name!r} names no queue")
    if any(s.name == decl.name for s in _STAGES):
        raise ValueError(f"stage {decl.name!r} is registered already")
    if after is None:
        _STAGES.append(decl)
    else:
        _STAGES.insert(names().index(after) + 1, decl)
    return decl


def unregister(name: str) -> None:
    _STAGES.remove(get(name))


def stages() -> tuple[type[StageDeclaration], ...]:
    return tuple(_STAGES)


def names() -> list[str]:
    return [s.name for s in _STAGES]


def get(name: str) -> type[StageDeclaration]:
    for s in _STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage named {name!r}")


def previous(name: str) -> str | None:
    i = names().index(name)
    return _STAGES[i - 1].name if i else None


def following(name: str) -> str | None:
    i = names().index(name)
    return _STAGES[i + 1].name if i + 1 < len(_STAGES) else None


def first() -> str:
    return _STAGES[0].name


def last() -> str:
    return _STAGES[-1].name


def status_fields() -> list[str]:
    return [s.status_field() for s in _STAGES]


def queues() -> list[str]:
    """The queues the stages use, in chain order, each once."""
    return list(dict.fromkeys(s.queue for s in _STAGES))
