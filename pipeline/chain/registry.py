"""The ordered registry of the chain's stages, and the driver every stage implements.

A stage is one class: its name (also the `<name>_status` column of ClipResult and the
Celery task `pipeline.<name>`), its queue, its config class and profile section, the
backend roles it uses, and a driver split the way transformers pipelines are:

    prepare(chunk)  -> items     load the clips' inputs (audio, earlier outputs)
    call(items)     -> outputs   one batched model call over the chunk's items
    write(results)               persist each clip's outcome

`pipeline.execution.run_chunk` drives a stage over one chunk of clips; Celery tasks,
routing, the next stage, dispatch, progress, the status columns and the raw INSERT column
lists (`pipeline.services`, `pipeline.external_import`) are all derived from this
registry, so a new stage is one module (a Stage subclass passed to `register`) plus a
migration for its status column.

This module imports no Django models (pipeline.models imports it to build the status
columns); the Django side of a stage is reached through the helpers below, lazily.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

# Sized by ClipResult.error_stage, which holds the name of the stage a clip failed in.
MAX_NAME = 8


@dataclasses.dataclass
class Item:
    """One clip's prepared input: its ClipResult row and whatever the stage needs."""

    row: Any
    data: Any = None


class Stage:
    """Base class of a stage. The class carries the registry entry; an instance is bound
    to one run (its resolved profile) while it works through one chunk of clips."""

    name: ClassVar[str] = ""
    queue: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None  # a dataclass read from the profile section
    config_key: ClassVar[str | None] = None  # profile section; the stage's name by default
    backends: ClassVar[tuple[str, ...]] = ()  # profile backend roles this stage may use

    def __init__(self, run) -> None:
        self.run = run
        self.config = self.read_config(run.config)
        self._backends: dict[str, object] = {}
        # (wall, model) seconds per clip of the chunk, set by the runner before write().
        self.per_clip: tuple[float, float] = (0.0, 0.0)

    # -- the driver ------------------------------------------------------------------
    def setup(self) -> None:
        """Load what every clip of the chunk shares (backends, indexes): not timed."""

    def prepare(self, chunk: list) -> list[Item]:
        """Items for the chunk's ClipResult rows. A clip whose input cannot be read is
        recorded with `self.fail(row, err)` and left out."""
        return [Item(row) for row in chunk]

    def call(self, items: list[Item]) -> list:
        """One output per item, in order; an Exception in place of an output fails that
        clip alone. Raising fails the whole chunk."""
        raise NotImplementedError

    def write(self, results: list[tuple[Item, Any]]) -> None:
        """Persist the outputs of the clips whose call succeeded (`self.save`)."""
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------
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

    def backend(self, role: str):
        """The profile's backend for `role` (None when the profile has none), built once."""
        if role not in self.backends:
            raise KeyError(f"stage {self.name!r} does not declare backend {role!r}")
        if role not in self._backends:
            from pipeline.stage_io import stage_backend

            self._backends[role] = stage_backend(self.run, role)
        return self._backends[role]

    def done(self, row, **fields) -> dict:
        """`fields` plus this stage's done status and the clip's timings."""
        from pipeline.models import StageStatus

        timings = dict(row.timings or {})
        wall, model = self.per_clip
        timings[self.name] = {"wall_s": round(wall, 6), "model_s": round(model, 6)}
        return {**fields, self.status_field(): StageStatus.DONE, "timings": timings}

    def save(self, row, fields: dict, candidates=None, replace_candidates: bool = False) -> bool:
        from pipeline.stage_io import stage_result_save

        return stage_result_save(row, self.name, fields, candidates, replace_candidates)

    def fail(self, row, err: Exception | str, **fields) -> None:
        from pipeline.stage_io import stage_result_fail

        stage_result_fail(row, self.name, err, **fields)


_STAGES: list[type[Stage]] = []


def register(cls: type[Stage], *, after: str | None = None) -> type[Stage]:
    """Add a stage to the chain: at the end, or right after the stage named `after`.
    Usable as a class decorator."""
    if not cls.name or len(cls.name) > MAX_NAME or not cls.name.isidentifier():
        raise ValueError(f"stage name {cls.name!r}: an identifier of 1 to {MAX_NAME} characters")
    if not cls.queue:
        raise ValueError(f"stage {cls.name!r} names no queue")
    if any(s.name == cls.name for s in _STAGES):
        raise ValueError(f"stage {cls.name!r} is registered already")
    if after is None:
        _STAGES.append(cls)
    else:
        _STAGES.insert(names().index(after) + 1, cls)
    return cls


def unregister(name: str) -> None:
    _STAGES.remove(get(name))


def stages() -> tuple[type[Stage], ...]:
    return tuple(_STAGES)


def names() -> list[str]:
    return [s.name for s in _STAGES]


def get(name: str) -> type[Stage]:
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
