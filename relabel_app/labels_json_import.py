"""Import the `{"data": [{"wav": ..., "labels": "mid,mid"}]}` format (AST/SSAST and the
published relabeled set) as original labels, through the same COPY importer as segment CSVs."""

from __future__ import annotations

from pathlib import Path

from .json_stream import JsonFileError, iter_data_items
from .segment_import import ImportReport, SegmentImportError, segments_import

# The JSON format carries no segment times; AudioSet clips are 10 s from the file name's
# start when it has one, else from 0.
DEFAULT_CLIP_SECONDS = 10.0


_READ_CAP = 256 * 1024


class _ItemError(SegmentImportError):
    """A bad item found while converting (reported as it is, not re-wrapped)."""


def _item_line(item: object) -> tuple[bytes, str | None]:
    """The segments-CSV line of one item, or (b"", reason) when the item is bad."""
    from .audio_files import ytid_from_filename

    if not isinstance(item, dict) or not isinstance(item.get("wav"), str) \
            or not isinstance(item.get("labels"), str):
        return b"", 'item needs string fields "wav" and "labels"'
    parsed = ytid_from_filename(Path(item["wav"]).name)
    if parsed is None:
        return b"", f"no YouTube id in file name {Path(item['wav']).name!r}"
    if "\n" in item["labels"] or "\r" in item["labels"]:
        # It would split the item's CSV line in two: item numbers would shift and the
        # second half would be read as a row of its own (another clip).
        return b"", "line break in the labels"
    ytid, start = parsed
    start = float(start or 0.0)
    mids = item["labels"].replace('"', "")
    return f'{ytid}, {start:.3f}, {start + DEFAULT_CLIP_SECONDS:.3f}, "{mids}"'.encode(), None


class _SegmentLines:
    """A binary stream of segments-CSV lines made from the JSON items as the importer
    reads (line N = item N; a bad item is an empty line, reported here). Nothing but the
    current chunk is held in memory."""

    def __init__(self, items, source_name: str, skip_bad: bool):
        self.items = enumerate(items, start=1)
        self.source, self.skip_bad = source_name, skip_bad
        self.problems: dict[int, str] = {}
        self._done = False

    def read(self, n: int = -1) -> bytes:
        # A short read is fine for a stream; small chunks keep the line objects few.
        n = _READ_CAP if n < 0 else min(n, _READ_CAP)
        out: list[bytes] = []
        size = 0
        while not self._done and size < n:
            try:
                number, item = next(self.items)
            except StopIteration:
                self._done = True
                break
            except JsonFileError as e:
                raise _ItemError(self.source, e.line, e.reason) from None
            line, problem = _item_line(item)
            if problem is not None:
                if not self.skip_bad:
                    raise _ItemError(self.source, number, f"item {number}: {problem}")
                self.problems[number] = problem
            out.append(line + b"\n")
            size += len(line) + 1
        return b"".join(out)


def labels_json_import(
    *, path: str | Path, dataset_name: str, audio_root: str | None = None, skip_bad: bool = False
) -> ImportReport:
    """Import the file in one transaction (streamed: constant memory). Without skip_bad
    the first bad item stops it and nothing is written, not even the dataset."""
    name = str(path)
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise SegmentImportError(name, 0, f"cannot read: {e.strerror or e}") from None
    with f:
        lines = _SegmentLines(iter_data_items(f, reopen=lambda: path.open("rb")), name, skip_bad)
        try:
            report = segments_import(
                source=lines, source_name=name, dataset_name=dataset_name,
                audio_root=audio_root, skip_bad=skip_bad,
            )
        except _ItemError:
            raise
        except SegmentImportError as e:
            if e.line == 0:
                raise
            raise SegmentImportError(name, e.line, f"item {e.line}: {e.reason}") from None
    problems = lines.problems
    # Blank lines stand for items already reported above; merge both lists, by item.
    from .segment_import import BadRow

    report.bad_rows = sorted(
        [BadRow(n, r) for n, r in problems.items()] + report.bad_rows, key=lambda b: b.line
    )
    report.rows_read += len(problems)
    return report
