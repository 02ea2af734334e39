"""Streamed exports of the curated set: AudioSet segments CSV, the AST/SSAST JSON and a
decisions CSV. Constant memory whatever the dataset's size.

How: each export is ONE SQL statement run as ``COPY (SELECT ...) TO STDOUT``; PostgreSQL
resolves the curated set (curation.resolution), aggregates each clip's labels with
``string_agg`` in dataset order and sends one line per clip; Python only copies the bytes
to the file. There is never a list of rows in Python.

The segments header needs its counts (num_ytids, num_segs, num_unique_labels,
num_positive_labels) before the first row. The statement computes them itself: the
per-clip rows are a MATERIALIZED CTE read twice, once by an aggregate that becomes the
first line of the COPY (a "meta" line this module turns into the header) and once for the
rows. One statement means one snapshot, so the counts always match the rows, with no
second pass over the data and no temporary file.

Clips left with no curated label are left out: AudioSet's files list only labelled clips,
and the importer (and most readers) reject an empty label list. The first header line
says how many were left out.

Lines travel as single CSV values with delimiter 0x1f and quote 0x1e, so PostgreSQL never
quotes or escapes them: YouTube ids and MIDs never contain those bytes, and JSON text
from ``to_json`` escapes every control character. A line that got quoted anyway (a clip
whose id holds a control byte) stops the export rather than writing a corrupt file.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from relabel_app.models import Dataset
from review.models import ErrorCategory

from .models import ExportJob, Policy
from .resolution import Scope, T, clip_scope_sql, curated_per_clip_sql

Format = ExportJob.Format
ProgressFn = Callable[[int, "int | None"], None]
"""Called with (rows written, rows in all) now and then while an export writes."""

_LINE_COPY_OPTIONS = "(FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')"
_PROGRESS_EVERY_S = 0.5
_WRITE_BUFFER = 1 << 20

SEGMENTS_COLUMNS = "# YTID, start_seconds, end_seconds, positive_labels"


class ExportError(Exception):
    pass


@dataclass
class ExportResult:
    dataset: str
    format: str
    policy: str
    rows: int = 0
    num_ytids: int | None = None
    num_segs: int | None = None
    num_unique_labels: int | None = None
    num_positive_labels: int | None = None
    clips_in_scope: int | None = None
    clips_left_out: int | None = None
    bytes: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def file_extension(fmt: str) -> str:
    return "json" if Format(fmt) == Format.JSON else "csv"


# --- SQL -------------------------------------------------------------------------------


def _sec(col: str) -> str:
    # numeric keeps exactly three decimals ("30.000"), like AudioSet's own files.
    return f"round({col}::numeric, 3)"


def curated_lines_sql(dataset: Dataset, fmt: str, policy: str) -> tuple[str, dict]:
    """The statement of a segments-CSV or JSON export: a meta line
    "clips_in_scope num_segs num_ytids num_positive_labels num_unique_labels", then one
    line per clip in dataset order."""
    scope = Scope(dataset_id=dataset.pk)
    required = dataset.required_reviews
    params = scope.params()
    if Format(fmt) == Format.CSV:
        line = (f"""ytid || ', ' || {_sec("start_s")} || ', ' || {_sec("end_s")} """
                """|| ', "' || mids || '"'""")
    elif Format(fmt) == Format.JSON:
        params["audio_root"] = str(dataset.resolved_audio_root()).rstrip("/") + "/"
        wav = ("CASE WHEN audio_path <> '' THEN %(audio_root)s || audio_path "
               "ELSE 'Y' || ytid || '.wav' END")
        line = (f"""'{{"wav": ' || to_json({wav})::text || ', "labels": ' """
                """|| to_json(mids)::text || '}'""")
    else:
        raise ValueError(f"not a curated-set format: {fmt}")
    in_scope = clip_scope_sql(scope, policy, required_reviews=required).replace(
        "SELECT c.id", "SELECT count(*)", 1
    )
    sql = curated_per_clip_sql(scope, policy, required_reviews=required) + f"""
    SELECT line FROM (
        SELECT 0 AS part, 0 AS position, 0::bigint AS id,
               concat_ws(' ', ({in_scope}), count(*), count(DISTINCT ytid),
                         coalesce(sum(n_labels), 0),
                         (SELECT count(*) FROM (SELECT label_id FROM curated GROUP BY label_id) u)
               ) AS line
        FROM per_clip
        UNION ALL
        SELECT 1, position, id, {line} FROM per_clip
    ) x
    ORDER BY part, position, id"""
    return sql, params


def decisions_sql(dataset: Dataset) -> tuple[str, dict]:
    """Every reviewer decision and every adjudication of the dataset, in dataset order."""
    user = get_user_model()._meta.db_table
    sql = f"""
    SELECT c.ytid, {_sec("c.start_s")} AS start_seconds, {_sec("c.end_s")} AS end_seconds,
           l.mid AS label_mid, l.name AS label_name, u.username AS reviewer, x.source,
           x.verdict, coalesce(ec.slug, '') AS error_category, x.note,
           to_char(x.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS time
    FROM (
        SELECT d.clip_id, d.label_id, d.reviewer_id AS user_id, 'review' AS source,
               d.verdict, d.error_category_id, d.note, d.updated_at AS at
        FROM {T.decision} d
        UNION ALL
        SELECT a.clip_id, a.label_id, a.curator_id, 'adjudication', a.verdict, NULL,
               a.note, a.updated_at
        FROM {T.adjudication} a
    ) x
    JOIN {T.clip} c ON c.id = x.clip_id
    JOIN {T.label} l ON l.id = x.label_id
    JOIN {user} u ON u.id = x.user_id
    LEFT JOIN {ErrorCategory._meta.db_table} ec ON ec.id = x.error_category_id
    WHERE c.dataset_id = %(dataset_id)s
    ORDER BY c.position, c.id, l.index NULLS LAST, l.mid, x.source DESC, u.username"""
    return sql, {"dataset_id": dataset.pk}


def _decisions_count(dataset: Dataset) -> int:
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT (SELECT count(*) FROM {T.decision} d JOIN {T.clip} c ON c.id = d.clip_id
                        WHERE c.dataset_id = %(ds)s)
                     + (SELECT count(*) FROM {T.adjudication} a JOIN {T.clip} c
                        ON c.id = a.clip_id WHERE c.dataset_id = %(ds)s)""",
            {"ds": dataset.pk},
        )
        return int(cur.fetchone()[0])


# --- writers ---------------------------------------------------------------------------


class _Progress:
    def __init__(self, fn: ProgressFn | None):
        self.fn = fn
        self.total: int | None = None
        self._last = 0.0

    def __call__(self, done: int, *, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if force or now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self.fn(done, self.total)


def segments_header(dataset: Dataset, policy: str, r: ExportResult) -> bytes:
    created = time.asctime(time.gmtime())
    return (
        f"# Segments csv created {created} by audioset-relabel-studio: dataset {dataset.name}, "
        f"policy {policy}; {r.clips_left_out} of {r.clips_in_scope} clips left out "
        f"(no curated label)\n"
        f"# num_ytids={r.num_ytids}, num_segs={r.num_segs}, "
        f"num_unique_labels={r.num_unique_labels}, num_positive_labels={r.num_positive_labels}\n"
        f"{SEGMENTS_COLUMNS}\n"
    ).encode()


def _write_curated(dataset: Dataset, fmt: str, policy: str, out: BinaryIO,
                   progress: _Progress, result: ExportResult) -> None:
    sql, params = curated_lines_sql(dataset, fmt, policy)
    is_json = Format(fmt) == Format.JSON
    rows = 0
    meta = None
    # A JSON item ends where its line ends; the "," between items goes before the next
    # one, so a "\n" is held back until we know another item follows (chunk boundaries
    # need not be line boundaries).
    held_newline = False
    with transaction.atomic(), connection.cursor() as wrapper:
        cur = wrapper.cursor
        # Compiling this plan costs more than it saves; exports are one-off statements.
        cur.execute("SET LOCAL jit = off")
        with cur.copy(f"COPY ({sql}) TO STDOUT {_LINE_COPY_OPTIONS}", params) as copy:
            for data in copy:
                data = bytes(data)
                if meta is None:
                    meta, _, data = data.partition(b"\n")
                    _apply_meta(meta, result)
                    progress.total = result.num_segs
                    if is_json:
                        out.write(b'{"data": [\n')
                    else:
                        out.write(segments_header(dataset, policy, result))
                    progress(0, force=True)
                    if not data:
                        continue
                if b"\x1e" in data:
                    raise ExportError("a clip's line needed CSV quoting (control characters "
                                      f"in its id?): {data[:80]!r}")
                rows += data.count(b"\n")
                if is_json:
                    if held_newline:
                        out.write(b",\n")
                    held_newline = data.endswith(b"\n")
                    if held_newline:
                        data = data[:-1]
                    out.write(data.replace(b"\n", b",\n"))
                else:
                    out.write(data)
                progress(rows)
    if is_json:
        out.write(b"\n]}\n")
    result.rows = rows
    if rows != result.num_segs:
        raise ExportError(f"wrote {rows} rows but the header counted {result.num_segs}")
    progress(rows, force=True)


def _apply_meta(meta: bytes, r: ExportResult) -> None:
    fields = [int(x) for x in meta.split()]
    (r.clips_in_scope, r.num_segs, r.num_ytids, r.num_positive_labels,
     r.num_unique_labels) = fields
    r.clips_left_out = r.clips_in_scope - r.num_segs


def _write_decisions(dataset: Dataset, out: BinaryIO, progress: _Progress,
                     result: ExportResult) -> None:
    sql, params = decisions_sql(dataset)
    progress.total = _decisions_count(dataset)
    progress(0, force=True)
    messages = 0
    with transaction.atomic(), connection.cursor() as wrapper:
        cur = wrapper.cursor
        cur.execute("SET LOCAL jit = off")
        # A real CSV (notes may hold commas, quotes, newlines): PostgreSQL quotes it.
        # PostgreSQL sends one COPY message per row, the header included, so counting
        # messages counts rows even when a note spans lines.
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", params) as copy:
            for data in copy:
                out.write(data)
                messages += 1
                progress(max(0, messages - 1))
    result.rows = max(0, messages - 1)
    progress(result.rows, force=True)


def export_write(*, dataset: Dataset, fmt: str, policy: str = Policy.KEEP_ORIGINAL,
                 out: BinaryIO, progress: ProgressFn | None = None) -> ExportResult:
    """Write one export of ``dataset`` to the binary stream ``out``."""
    fmt = Format(fmt).value
    policy = Policy(policy).value
    t0 = time.perf_counter()
    result = ExportResult(dataset=dataset.name, format=fmt, policy=policy)
    p = _Progress(progress)
    if fmt == Format.DECISIONS:
        _write_decisions(dataset, out, p, result)
    else:
        _write_curated(dataset, fmt, policy, out, p, result)
    result.seconds = time.perf_counter() - t0
    return result


def export_to_path(*, dataset: Dataset, fmt: str, policy: str = Policy.KEEP_ORIGINAL,
                   path: str | os.PathLike, progress: ProgressFn | None = None) -> ExportResult:
    """Write the export to a hidden file next to ``path`` and rename it into place when it
    is complete, so a reader (or a download) never sees half a file, and a duplicate run
    of the same job never writes into the other's file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(part, "wb", buffering=_WRITE_BUFFER) as f:
            result = export_write(dataset=dataset, fmt=fmt, policy=policy, out=f,
                                  progress=progress)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    result.bytes = path.stat().st_size
    return result
