"""Serving a clip's audio file: where it is (never outside the dataset's audio root) and
HTTP Range requests, so the browser's player can seek."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from relabel_app.models import Clip


class AudioPathRefused(Exception):
    """The stored path would leave the audio root (``..``, absolute, symlink out)."""


class RangeNotSatisfiable(Exception):
    pass


def clip_audio_file(clip: Clip) -> Path | None:
    """The clip's local audio file, or None when it has none. Raises AudioPathRefused when
    the stored path points outside the dataset's audio root, whatever the trick: an
    absolute path, a ``..`` part, or a symlink whose target lies outside."""
    rel = clip.audio_path
    if not rel:
        return None
    if "\x00" in rel:
        raise AudioPathRefused("NUL in path")
    for flavour in (PurePosixPath(rel), PureWindowsPath(rel)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            raise AudioPathRefused(f"not a plain relative path: {rel!r}")
    root = Path(clip.dataset.resolved_audio_root()).resolve()
    full = (root / rel).resolve()  # follows symlinks, so a link out of the root shows
    if not full.is_relative_to(root):
        raise AudioPathRefused(f"outside the audio root: {rel!r}")
    return full if full.is_file() else None


_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as (first, last) inclusive, or None to send the whole
    file (no header, another unit, or several ranges: RFC 9110 lets a server ignore those).
    Raises RangeNotSatisfiable for a malformed or unsatisfiable bytes range."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _RANGE.match(spec)
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable(header)
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


def iter_file_range(path: Path, start: int, length: int, chunk: int = 64 * 1024):
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            data = f.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            yield data


def file_etag(path: Path) -> str:
    st = os.stat(path)
    return f'"{st.st_size:x}-{int(st.st_mtime_ns):x}"'
