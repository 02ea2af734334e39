"""Import the `{"data": [{"wav": ..., "labels": "mid,mid"}]}` format (AST/SSAST and the
published relabeled set) as original labels, through the same COPY importer as segment CSVs."""

from __future__ import annotations

import io
import json
from pathlib import Path

from .segment_import import ImportReport, SegmentImportError, segments_import

# The JSON format carries no segment times; AudioSet clips are 10 s from the file name's
# start when it has one, else from 0.
DEFAULT_CLIP_SECONDS = 10.0


def labels_json_to_segments(data: object, source_name: str) -> tuple[bytes, dict[int, str]]:
    """Turn the JSON document into segments-CSV bytes, one line per item (line N = item N).
    Returns the bytes and the per-item problems found before the CSV stage."""
    from .audio_files import ytid_from_filename

    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SegmentImportError(source_name, 0, 'expected an object {"data": [...]}')
    lines: list[bytes] = []
    problems: dict[int, str] = {}
    for n, item in enumerate(data["data"], start=1):
        if not isinstance(item, dict) or not isinstance(item.get("wav"), str) \
                or not isinstance(item.get("labels"), str):
            problems[n] = 'item needs string fields "wav" and "labels"'
            lines.append(b"")
            continue
        parsed = ytid_from_filename(Path(item["wav"]).name)
        if parsed is None:
            problems[n] = f"no YouTube id in file name {Path(item['wav']).name!r}"
            lines.append(b"")
            continue
        if "\n" in item["labels"]:
            # It would split the item's CSV line in two: item numbers would shift and the
            # second half would be read as a row of its own (another clip).
            problems[n] = "line break in the labels"
            lines.append(b"")
            continue
        ytid, start = parsed
        start = float(start or 0.0)
        mids = item["labels"].replace('"', "")
        lines.append(
            f'{ytid}, {start:.3f}, {start + DEFAULT_CLIP_SECONDS:.3f}, "{mids}"'.encode()
        )
    return b"\n".join(lines) + b"\n", problems


def labels_json_import(
    *, path: str | Path, dataset_name: str, audio_root: str | None = None, skip_bad: bool = False
) -> ImportReport:
    name = str(path)
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise SegmentImportError(name, getattr(e, "lineno", 0), f"not valid JSON: {e}") from None
    csv_bytes, problems = labels_json_to_segments(data, name)
    if problems and not skip_bad:
        n, reason = min(problems.items())
        raise SegmentImportError(name, n, f"item {n}: {reason}")
    try:
        report = segments_import(
            source=io.BytesIO(csv_bytes), source_name=name, dataset_name=dataset_name,
            audio_root=audio_root, skip_bad=skip_bad,
        )
    except SegmentImportError as e:
        raise SegmentImportError(name, e.line, f"item {e.line}: {e.reason}") from None
    # Blank lines stand for items already reported above; merge both lists, by item.
    from .segment_import import BadRow

    report.bad_rows = sorted(
        [BadRow(n, r) for n, r in problems.items()] + report.bad_rows, key=lambda b: b.line
    )
    report.rows_read += len(problems)
    return report
