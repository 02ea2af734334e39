"""Audio files on disk: what they are (probe), which clip they belong to (file names), where
they are (folder scan). Plain Python, no Django.

File names
----------
A YouTube id (YTID) is exactly 11 characters of ``[A-Za-z0-9_-]``; it may itself begin with
``Y`` or ``-`` and may contain ``_``. Supported names (any case of extension, see
``AUDIO_EXTENSIONS``)::

    <ytid>.wav                      bare id
    Y<ytid>.wav                     AST / SSAST / PANNs convention
    <ytid>_<start>.wav              start only
    <ytid>_<start>_<end>.wav        start and end
    Y<ytid>_<start>.wav, Y<ytid>_<start>_<end>.wav

``<start>`` and ``<end>`` are unsigned decimal numbers: integers (``30``, ``000030``) or
floats (``30.000``, ``30.5``), in seconds. One exception: when *both* are integers and the
span ``end - start`` is longer than ``MAX_SECONDS_SPAN`` (60), they are read as
milliseconds (``<ytid>_30000_40000.wav`` is 30 s to 40 s); an AudioSet segment is at most
10 s long, so such a span cannot be seconds. A lone integer start is always seconds.
``end`` must be greater than ``start``. Anything else (other separators, extra words,
signs, exponents) is not recognised and the file is skipped.

Ambiguity is resolved by the 11-character rule: the id is ``stem[0:11]`` or, if the stem
starts with ``Y``, ``stem[1:12]``; what follows the id must be empty or ``_<number>`` /
``_<number>_<number>``. Both readings can never succeed on one name: the bare reading
needs a stem of exactly 11 characters or a digit at index 12, the ``Y`` reading needs a
stem of exactly 12 characters or ``_`` at index 12 (0-based). So ``YabcdefghijK.wav`` (12
characters) is id ``abcdefghijK``, ``Yabcdefghij.wav`` (11) is id ``Yabcdefghij``, and
``a_b_c_d_e_f_30_40.wav`` is id ``a_b_c_d_e_f`` from 30 s to 40 s.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".webm", ".aif",
     ".aiff"}
)
YTID_LEN = 11
YTID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
MAX_SECONDS_SPAN = 60.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024  # 200 MiB
DEFAULT_MAX_DURATION_S = 600.0
FFPROBE_TIMEOUT_S = 30.0

_NUM = r"(\d{1,12}(?:\.\d{1,9})?)"
_TAIL_RE = re.compile(rf"(?:_{_NUM}(?:_{_NUM})?)?")


class AudioDecodeError(ValueError):
    """An audio file could not be probed or decoded; the message says why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    format: str = ""  # e.g. "WAV/PCM_16", "FLAC/PCM_24", "ffprobe:aac"


@dataclass(frozen=True)
class ParsedName:
    ytid: str
    start_s: float | None
    end_s: float | None


# ---------------------------------------------------------------------------------------
# checks shared with pipeline.audio


def check_file(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES) -> int:
    """Raise AudioDecodeError unless ``path`` is a non-empty regular file of at most
    ``max_bytes`` bytes (None: no limit). Returns its size. Nothing is read."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioDecodeError(p, "file not found") from None
    except OSError as e:
        raise AudioDecodeError(p, f"cannot access file: {e.strerror or e}") from None
    if not p.is_file():
        raise AudioDecodeError(p, "not a regular file")
    if st.st_size == 0:
        raise AudioDecodeError(p, "empty file (0 bytes)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise AudioDecodeError(
            p, f"file too large: {st.st_size} bytes is over the limit of {max_bytes} bytes"
        )
    return st.st_size


def sniff_container(path: str | os.PathLike) -> str | None:
    """Name of the audio container the file's first bytes announce, or None when they
    look like no audio format we know (text, random bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return None
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"caff":
        return "caf"
    if head[:4] in (b".snd", b"dns."):
        return "au"
    if head[:4] == b"wvpk":
        return "wavpack"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"
    if len(head) >= 3 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        # 11-bit frame sync shared by MPEG audio (MP3/MP2) and AAC ADTS
        version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
        if layer == 0:
            return "aac" if (head[1] & 0xF6) == 0xF0 else None
        bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
        if version != 1 and bitrate != 15 and rate != 3:
            return "mpeg"
    return None


def libsndfile_reason(e: BaseException) -> str:
    """The reason in a soundfile exception, without the "Error opening '<path>': " prefix
    and with libsndfile's misleading "does not exist" (said of undecodable MP3) reworded."""
    msg = str(e).strip()
    if msg.startswith("Error opening") and ": " in msg:
        msg = msg.split(": ", 1)[1]
    if "does not exist or is not a regular file" in msg:
        msg = "libsndfile found no decodable audio in it"
    return msg or type(e).__name__


def check_wav_complete(path: str | os.PathLike, size: int) -> None:
    """For RIFF/WAVE files, raise AudioDecodeError when the header ends early or the
    data chunk declares more bytes than the file holds (an interrupted download).
    Streaming placeholders (data size 0 or 0xFFFFFFFF) and RF64 are not checked."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        order = "little" if head[:4] == b"RIFF" else "big"
        pos = 12
        for _ in range(10_000):
            f.seek(pos)
            hdr = f.read(8)
            if len(hdr) < 8:
                raise AudioDecodeError(
                    path, f"truncated WAV: header ends at byte {size} before the data chunk"
                )
            chunk_id, n = hdr[:4], int.from_bytes(hdr[4:], order)
            if chunk_id == b"data":
                available = size - pos - 8
                if n not in (0, 0xFFFFFFFF) and n > available:
                    raise AudioDecodeError(
                        path,
                        f"truncated WAV: data chunk declares {n} bytes but only "
                        f"{available} are present",
                    )
                return
            pos += 8 + n + (n & 1)


def _ffprobe() -> str | None:
    return shutil.which("ffprobe")


def ffprobe_info(path: Path, timeout_s: float = FFPROBE_TIMEOUT_S) -> AudioInfo | None:
    """AudioInfo of the first audio stream by ffprobe, or None when ffprobe fails."""
    exe = _ffprobe()
    if exe is None:
        return None
    cmd = [
        exe, "-v", "error", "-protocol_whitelist", "file",
        "-select_streams", "a:0",
        "-show_entries", "stream=codec_name,sample_rate,channels,duration:format=duration",
        "-of", "json", "file:" + str(path.resolve()),
    ]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    if r.returncode != 0:
        return None
    try:
        data = json.loads(r.stdout.decode("utf-8", "replace") or "{}")
        stream = (data.get("streams") or [None])[0]
        if not stream:
            return None
        sr = int(stream.get("sample_rate") or 0)
        ch = int(stream.get("channels") or 0)
        dur_txt = stream.get("duration") or (data.get("format") or {}).get("duration")
        dur = float(dur_txt) if dur_txt not in (None, "N/A") else float("nan")
    except (ValueError, TypeError, AttributeError):
        return None
    if sr <= 0 or ch <= 0 or not math.isfinite(dur) or dur < 0:
        return None
    frames = round(dur * sr)
    return AudioInfo(frames / sr, sr, ch, frames, f"ffprobe:{stream.get('codec_name', '?')}")


# ---------------------------------------------------------------------------------------
# probe


def probe_audio(
    path: str | os.PathLike,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    use_ffprobe: bool = True,
) -> AudioInfo:
    """Duration, sample rate, channels and frame count of an audio file, from its header
    (soundfile; ffprobe for formats libsndfile cannot read, e.g. m4a, when installed).

    Raises AudioDecodeError: file not found, empty, too large, truncated WAV, not audio,
    corrupt, zero-length (0 frames). MP3 frame counts are libsndfile's estimate."""
    p = Path(path)
    size = check_file(p, max_bytes)
    container = sniff_container(p)
    if container == "wav":
        check_wav_complete(p, size)
    try:
        info = sf.info(str(p))
    except Exception as e:  # libsndfile says why; any failure here is "cannot read"
        reason = libsndfile_reason(e)
        if use_ffprobe and container is not None:
            fi = ffprobe_info(p)
            if fi is not None:
                if fi.frames <= 0:
                    raise AudioDecodeError(p, "zero-length audio (0 frames)") from None
                return fi
        if container is None:
            raise AudioDecodeError(p, f"not an audio file (unrecognised format: {reason})") \
                from None
        raise AudioDecodeError(p, f"corrupt or truncated {container} file: {reason}") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioDecodeError(p, f"corrupt header: {info.samplerate} Hz, {info.channels} ch")
    if info.frames <= 0:
        raise AudioDecodeError(p, "zero-length audio (0 frames)")
    return AudioInfo(
        duration_s=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=f"{info.format}/{info.subtype}",
    )


# ---------------------------------------------------------------------------------------
# file names


def _number(txt: str) -> tuple[float, bool]:
    return float(txt), "." not in txt


def parse_audio_filename(name: str | os.PathLike) -> ParsedName | None:
    """YTID, start and end (seconds, None when absent) of a file name in one of the
    supported schemes (module docstring), or None. Only the base name is looked at."""
    base = os.path.basename(os.fspath(name))
    stem, ext = os.path.splitext(base)
    if ext.lower() not in AUDIO_EXTENSIONS:
        return None
    candidates = [0]
    if stem.startswith("Y"):
        candidates.append(1)
    for off in candidates:
        ytid = stem[off:off + YTID_LEN]
        if not YTID_RE.fullmatch(ytid):
            continue
        m = _TAIL_RE.fullmatch(stem, off + YTID_LEN)
        if m is None:
            continue
        start = end = None
        if m.group(1) is not None:
            start, start_int = _number(m.group(1))
            if m.group(2) is not None:
                end, end_int = _number(m.group(2))
                if end <= start:
                    continue
                if start_int and end_int and end - start > MAX_SECONDS_SPAN:
                    start, end = start / 1000.0, end / 1000.0
        return ParsedName(ytid, start, end)
    return None


def ytid_from_filename(name: str | os.PathLike) -> tuple[str, float | None] | None:
    """(ytid, start seconds or None) of a supported file name, or None."""
    parsed = parse_audio_filename(name)
    return None if parsed is None else (parsed.ytid, parsed.start_s)


def scan_audio_folder(
    root: str | os.PathLike,
) -> Iterator[tuple[Path, str, float | None]]:
    """Walk ``root`` recursively (sorted, symlinked folders not followed, hidden files and
    folders skipped) and yield ``(path relative to root, ytid, start seconds or None)`` for
    every audio file whose name is in a supported scheme. Other files are skipped."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            parsed = ytid_from_filename(fn)
            if parsed is None:
                continue
            rel = (Path(dirpath) / fn).relative_to(root)
            yield rel, parsed[0], parsed[1]
