"""The chain's stages with their write code, and the driver every stage implements.

A stage's declaration (its name, queue, config class, status column and backend roles:
pipeline.stage_declarations, plain data that pipeline.models reads) is subclassed here by
its write code, split the way transformers pipelines are:

    prepare(chunk)  -> items     load the clips' inputs (audio, earlier outputs)
    call(items)     -> outputs   one batched model call over the chunk's items
    write(results)               persist each clip's outcome

`pipeline.execution.run_chunk` drives a stage over one chunk of clips; Celery tasks,
routing, the next stage, dispatch, progress, the status columns and the raw INSERT column
lists (`pipeline.services`, `pipeline.external_import`) are all derived from the one
ordered list of declarations, so a new stage is one module (a Stage subclass passed to
`register`) plus a migration for its status column.

The write code imports the models; the models import only the declarations, so there is
no circle (import-linter contracts in pyproject.toml keep it so).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline import stage_declarations as declarations
from pipeline.models import StageStatus
from pipeline.stage_declarations import (  # noqa: F401  (the registry's interface)
    MAX_NAME,
    StageDeclaration,
    first,
    following,
    last,
    names,
    previous,
    queues,
    status_fields,
)
from pipeline.stage_io import stage_backend, stage_result_fail, stage_result_save


@dataclasses.dataclass
class Item:
    """One clip's prepared input: its ClipResult row and whatever the stage needs."""

    row: Any
    data: Any = None


class Stage(StageDeclaration):
    """Base class of a stage's write code. The class carries its declaration; an instance
    is bound to one run (its resolved profile) while it works through one chunk of clips."""

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
    def backend(self, role: str):
        """The profile's backend for `role` (None when the profile has none), built once."""
        if role not in self.backends:
            raise KeyError(f"stage {self.name!r} does not declare backend {role!r}")
        if role not in self._backends:
            self._backends[role] = stage_backend(self.run, role)
        return self._backends[role]

    def done(self, row, **fields) -> dict:
        """`fields` plus this stage's done status and the clip's timings."""
        timings = dict(row.timings or {})
        wall, model = self.per_clip
        timings[self.name] = {"wall_s": round(wall, 6), "model_s": round(model, 6)}
        return {**fields, self.status_field(): StageStatus.DONE, "timings": timings}

    def save(self, row, fields: dict, candidates=None, replace_candidates: bool = False) -> bool:
        return stage_result_save(row, self.name, fields, candidates, replace_candidates)

    def fail(self, row, err: Exception | str, **fields) -> None:
        stage_result_fail(row, self.name, err, **fields)


# The write code of each declared stage, by name.
_WRITERS: dict[str, type[Stage]] = {}


def register(cls: type[Stage], *, after: str | None = None) -> type[Stage]:
    """Add a stage that declares itself (its Stage subclass is its declaration): at the end
    of the chain, or right after the stage named `after`. Usable as a class decorator."""
    declarations.register(cls, after=after)
    _WRITERS[cls.name] = cls
    return cls


def implement(cls: type[Stage]) -> type[Stage]:
    """Attach the write code of a stage declared in pipeline.stage_declarations."""
    decl = declarations.get(cls.name)
    if not issubclass(cls, decl):
        raise ValueError(f"{cls.__name__} does not subclass the declaration of {cls.name!r}")
    _WRITERS[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    declarations.unregister(name)
    _WRITERS.pop(name, None)


def get(name: str) -> type[Stage]:
    """The stage's write code (KeyError for a stage that is not registered)."""
    declarations.get(name)
    try:
        return _WRITERS[name]
    except KeyError:
        raise KeyError(f"stage {name!r} is declared but has no write code") from None


def stages() -> tuple[type[Stage], ...]:
    return tuple(get(name) for name in names())
