"""Streaming reads of the ``{"data": [item, ...]}`` label files (AST/SSAST format, the
published relabeled set): one item at a time through ijson, so memory stays flat whatever
the file's size (the whole-file ``json.loads`` took 327 MB for a 16 MB file).

A UTF-8 byte order mark at the start is skipped. Problems come back as JsonFileError with
the line of the file where parsing stopped (found on the error path only, by a second,
position-reporting pass)."""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Iterator
from typing import BinaryIO

import ijson

BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 64  # an item is a flat object; deeper nesting is an attack, not data
NOT_AN_OBJECT = 'expected an object {"data": [...]}'


class JsonFileError(Exception):
    """The file is not JSON, or not ``{"data": [...]}``. ``line`` is 0 when unknown."""

    def __init__(self, line: int, reason: str):
        self.line, self.reason = line, reason
        super().__init__(reason)


class BomSkippingReader:
    """A binary file read through once: a leading UTF-8 BOM is dropped; optional
    ``on_data`` sees every byte that passes (hashing, counting)."""

    def __init__(self, f: BinaryIO, on_data=None):
        self.f, self.on_data, self._first = f, on_data, True

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if self.on_data is not None:
            self.on_data(data)
        if self._first and data:
            self._first = False
            while len(data) < len(BOM) and data == BOM[: len(data)]:
                more = self.f.read(len(BOM) - len(data))
                if not more:
                    break
                if self.on_data is not None:
                    self.on_data(more)
                data += more
            if data.startswith(BOM):
                data = data[len(BOM):]
        return data


def _checked(events) -> Iterator[tuple]:
    """The parse events, refusing anything but {"data": [...]} and deep nesting."""
    depth = 0
    saw_data = False
    first = True
    top_is_map = True
    for prefix, event, value in events:
        if first:
            first = False
            # Not an object: still read to the end, so a broken file says "not valid JSON".
            top_is_map = event == "start_map"
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonFileError(0, f"not valid JSON: nested deeper than {MAX_DEPTH} levels")
            if prefix == "data" and event == "start_array" and depth == 2:
                saw_data = True
        elif event in ("end_map", "end_array"):
            depth -= 1
        if not top_is_map:
            continue
        if prefix == "data" and depth == 1 and event not in ("end_array",) and not saw_data:
            raise JsonFileError(0, NOT_AN_OBJECT)
        yield prefix, event, value
    if first:
        raise JsonFileError(0, "not valid JSON: the file is empty")
    if not saw_data:
        raise JsonFileError(0, NOT_AN_OBJECT)


def _error_line(reopen) -> int:
    """The 1-based line where the pure-Python parser stops on this file (error path only,
    streamed too): it reports a character position, turned into a line here."""
    m = None
    with reopen() as f:
        events = ijson.get_backend("python").basic_parse(BomSkippingReader(f))
        try:
            for _ in events:
                pass
        except Exception as e:  # noqa: BLE001 - only its message is wanted
            m = re.search(r" at (\d+)$", str(e))
        # The pure-Python parser's inner generators complain again when collected;
        # close them here, quietly.
        old_hook = sys.unraisablehook
        sys.unraisablehook = lambda *a: None
        try:
            events.close()
            del events
            gc.collect()
        except Exception:  # noqa: BLE001, S110
            pass
        finally:
            sys.unraisablehook = old_hook
    if not m:
        return 0
    pos = int(m.group(1))
    line, seen = 1, 0
    with reopen() as f:
        reader = BomSkippingReader(f)
        while seen < pos:
            chunk = reader.read(min(1 << 16, pos - seen))
            if not chunk:
                break
            line += chunk.count(b"\n")
            seen += len(chunk)
    return line


def iter_data_items(f: BinaryIO, *, reopen=None) -> Iterator[object]:
    """Yield the items of ``{"data": [...]}`` from the binary file ``f`` one by one (each a
    plain Python value). Raises JsonFileError; ``reopen`` (a callable returning a fresh
    binary file) lets the error name the line."""
    reader = f if isinstance(f, BomSkippingReader) else BomSkippingReader(f)
    try:
        yield from ijson.items(_checked(ijson.parse(reader, use_float=True)), "data.item")
    except JsonFileError:
        raise
    except (ijson.JSONError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        line = _error_line(reopen) if reopen is not None else 0
        raise JsonFileError(line, f"not valid JSON: {first[:200]}") from None
