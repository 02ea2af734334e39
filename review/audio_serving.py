"""Serving a clip's audio file: where it is (never outside the dataset's audio root, and
that root only under settings.RELABEL_AUDIO_ROOTS), what it is (audio by its first bytes,
never by its name: anything else is refused) and HTTP Range requests, so the browser's
player can seek."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from relabel_app.models import Clip
from relabel_app.names import audio_root_allowed


class AudioPathRefused(Exception):
    """The stored path would leave the audio root (``..``, absolute, symlink out), the
    root is not under an allowed folder, or the file is not audio."""


_SNIFF_BYTES = 12
_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"mp41", b"mp42", b"isom", b"iso2", b"dash"}


def sniff_audio_type(head: bytes) -> str | None:
    """The audio MIME type that a file's first bytes announce, or None when they are not
    one of the audio formats the players read (WAV, FLAC, Ogg, MP3, MP4/M4A, AIFF, WebM)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:3] == b"ID3":
        return "audio/mpeg"
    # An MPEG audio frame: 11 sync bits, a valid version (not 01) and layer (not 00).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 \
            and head[1] & 0x18 != 0x08 and head[1] & 0x06 != 0:
        return "audio/mpeg"
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_AUDIO_BRANDS:
        return "audio/mp4"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    return None


_EXTENSIONS = {"audio/wav": ".wav", "audio/flac": ".flac", "audio/ogg": ".ogg",
               "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aiff": ".aiff",
               "audio/webm": ".webm"}


def audio_download_name(clip_id: int, content_type: str) -> str:
    """The file name a served clip is saved under: from the clip id and the sniffed type,
    never the stored path (a server detail)."""
    return f"clip-{clip_id}{_EXTENSIONS.get(content_type, '')}"


def audio_file_type(path: Path) -> str | None:
    """The audio MIME type of the file by its content, or None when it is not audio."""
    try:
        with open(path, "rb") as f:
            return sniff_audio_type(f.read(_SNIFF_BYTES))
    except OSError:
        return None


class RangeNotSatisfiable(Exception):
    pass


def clip_audio_file(clip: Clip) -> Path | None:
    """The clip's local audio file, or None when it has none. Raises AudioPathRefused when
    the stored path points outside the dataset's audio root, whatever the trick: an
    absolute path, a ``..`` part, or a symlink whose target lies outside; when the root
    itself is not under settings.RELABEL_AUDIO_ROOTS; or when the file is not audio by its
    first bytes (an ``evil.html`` is never served, whatever its name)."""
    rel = clip.audio_path
    if not rel:
        return None
    if "\x00" in rel:
        raise AudioPathRefused("NUL in path")
    for flavour in (PurePosixPath(rel), PureWindowsPath(rel)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            raise AudioPathRefused(f"not a plain relative path: {rel!r}")
    root_setting = clip.dataset.resolved_audio_root()
    if not audio_root_allowed(root_setting):
        raise AudioPathRefused(f"audio root not allowed: {str(root_setting)!r}")
    root = Path(root_setting).resolve()
    full = (root / rel).resolve()  # follows symlinks, so a link out of the root shows
    if not full.is_relative_to(root):
        raise AudioPathRefused(f"outside the audio root: {rel!r}")
    if not full.is_file():
        return None
    if audio_file_type(full) is None:
        raise AudioPathRefused(f"not an audio file: {rel!r}")
    return full


_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$", re.ASCII)
# No file has more bytes than 18 digits count (an exabyte); longer numbers are refused
# before int() (whose 4,300-digit limit raised ValueError: a 500).
_MAX_DIGITS = 18


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
    if len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS:
        raise RangeNotSatisfiable(header[:100])
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
