"""The one rule for dataset names, and where audio may be read from.

A dataset name is a slug that starts with a letter or digit: ASCII letters, digits, ``_``
and ``-``, at most 100 characters. It is safe in a URL (``<slug:name>``), in HTML, in a
file name and as a spreadsheet cell (no leading ``-``), and it can never be a path
(no ``/``, ``\\`` or ``.``). The model (field validator and a database check constraint),
the forms, the API and every import command use this rule.

Audio roots: a dataset's ``audio_root`` must lie under one of ``settings.RELABEL_AUDIO_ROOTS``
(default: the data folder and settings.AUDIO_ROOT). Checked by the model's ``clean`` (so
the admin), by the importers, and again when a file is served."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

DATASET_NAME_MAX = 100
# Also the database check constraint (PostgreSQL's ~ operator reads it the same way).
DATASET_NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

DATASET_NAME_HELP = (
    "Letters, digits, '_' and '-', starting with a letter or digit (at most "
    f"{DATASET_NAME_MAX} characters), e.g. balanced_train."
)

validate_dataset_name = RegexValidator(
    DATASET_NAME_REGEX, message=f"Not a valid dataset name. {DATASET_NAME_HELP}",
    code="invalid_dataset_name",
)


def dataset_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a dataset name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "a dataset name is required"
    if len(name) > DATASET_NAME_MAX or not _NAME_RE.fullmatch(name):
        shown = name[:60] + ("..." if len(name) > 60 else "")
        return f"{shown!r} is not a valid dataset name: {DATASET_NAME_HELP}"
    return None


def dataset_name_fixed(name: str) -> str:
    """A valid name made from an invalid one (for the data migration): runs of other
    characters become '-', leading '-'/'_' dropped; 'dataset' when nothing is left."""
    fixed = re.sub(r"[^A-Za-z0-9_-]+", "-", name).lstrip("-_")[:DATASET_NAME_MAX].rstrip("-")
    return fixed or "dataset"


def allowed_audio_roots() -> list[Path]:
    from django.conf import settings

    roots = getattr(settings, "RELABEL_AUDIO_ROOTS", None)
    if not roots:
        roots = [settings.DATA_DIR, settings.AUDIO_ROOT]
    return [Path(r).resolve() for r in roots]


def audio_root_allowed(path: str | Path) -> bool:
    """Whether ``path`` (symlinks followed) lies under one of the allowed audio roots."""
    p = str(path)
    if not p or "\x00" in p or not Path(p).is_absolute():
        return False
    full = Path(p).resolve()
    return any(full == r or full.is_relative_to(r) for r in allowed_audio_roots())


def audio_root_problem(path: str | Path) -> str | None:
    if audio_root_allowed(path):
        return None
    where = ", ".join(str(r) for r in allowed_audio_roots())
    return (f"audio root {str(path)[:200]!r} is not an absolute folder under the allowed "
            f"audio roots ({where}; setting RELABEL_AUDIO_ROOTS)")


def validate_audio_root(value: str) -> None:
    if value and (problem := audio_root_problem(value)):
        raise ValidationError(problem, code="audio_root_not_allowed")
