"""Import AudioSet segment lists (`YTID, start, end, "mid,mid"`) into Clip and ClipLabel.

Fast path for millions of rows: the file is parsed in Python into COPY text, clip ids are
reserved from the sequence under a table lock, and both tables are filled with
PostgreSQL COPY in one transaction, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import connection, transaction

from .models import Clip, ClipLabel, Dataset, Label
from .names import audio_root_problem, dataset_name_problem

MAX_LINE_BYTES = 64 * 1024
CHUNK_BYTES = 8 * 1024 * 1024
# Rows per COPY write: each batch is a list of small bytes objects (~100 B a row with
# its labels), so this bounds the import's working memory (about 5 MB a batch).
COPY_BATCH_ROWS = 50_000
YTID_RE = re.compile(rb"^[A-Za-z0-9_\-]{1,64}$")
HEADER_COUNTS_RE = re.compile(rb"(num_\w+)=(\d+)")


class SegmentImportError(Exception):
    """A bad row stopped the import; nothing of it was written."""

    def __init__(self, source: str, line: int, reason: str):
        self.source, self.line, self.reason = source, line, reason
        super().__init__(f"{source}:{line}: {reason}")


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    dataset: str
    source: str
    rows_read: int = 0
    clips_created: int = 0
    clips_existing: int = 0
    labels_created: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    header_counts: dict[str, int] = field(default_factory=dict)
    positive_labels: int = 0
    unique_labels: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def header_mismatches(self, positive_labels: int, unique_labels: int) -> list[str]:
        """Compare the file's own `# num_...` header with what was read."""
        seen = {
            "num_segs": self.rows_read - len(self.bad_rows),
            "num_positive_labels": positive_labels,
            "num_unique_labels": unique_labels,
        }
        return [
            f"{k}: header says {self.header_counts[k]}, file has {v}"
            for k, v in seen.items()
            if k in self.header_counts and self.header_counts[k] != v
        ]


_BOM = b"\xef\xbb\xbf"


def iter_lines(f: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Yield (line number, line) reading in chunks; a line over MAX_LINE_BYTES yields None
    instead (one spanning chunks is never held in memory: a 1 GB line must not take 1 GB),
    wherever it lies in the file. A UTF-8 byte order mark at the start is skipped (what
    spreadsheet programs write)."""
    lineno = 0
    rest = b""
    skipping = False
    first = True
    while True:
        chunk = f.read(CHUNK_BYTES)
        if not chunk:
            break
        if first:
            first = False
            while len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                more = f.read(CHUNK_BYTES)
                if not more:
                    break
                chunk += more
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
                if not chunk:
                    continue
        buf = rest + chunk if rest else chunk
        lines = buf.split(b"\n")
        rest = lines.pop()
        # Per-line length checks only when the chunk holds an over-long line (rare).
        long_lines = max(map(len, lines), default=0) > MAX_LINE_BYTES
        for line in lines:
            lineno += 1
            if skipping:
                skipping = False
                yield lineno, None
                continue
            yield lineno, None if long_lines and len(line) > MAX_LINE_BYTES else line
        if len(rest) > MAX_LINE_BYTES:
            skipping = True
            rest = b""
    if skipping:
        yield lineno + 1, None
    elif rest:
        yield lineno + 1, rest


def parse_segment_line(line: bytes) -> tuple[bytes, float, float, list[bytes]]:
    """Parse one data row; raise ValueError with a reason a person can act on."""
    q = line.find(b'"')
    if q >= 0:
        close = line.rfind(b'"')
        if close == q:
            raise ValueError("unterminated quoted label list")
        if line[close + 1 :].strip():
            raise ValueError("text after the quoted label list")
        head = line[:q].split(b",")
        if len(head) != 4 or head[3].strip():
            raise ValueError(f"expected 4 fields (YTID, start, end, labels), got {len(head)}")
        labels = line[q + 1 : close]
    else:
        head = line.split(b",")
        if len(head) != 4:
            raise ValueError(f"expected 4 fields (YTID, start, end, labels), got {len(head)}")
        labels = head[3]
    ytid = head[0].strip()
    if not YTID_RE.match(ytid):
        raise ValueError(f"invalid YTID {ytid[:80].decode(errors='replace')!r}")
    try:
        start = float(head[1])
        end = float(head[2])
    except ValueError:
        raise ValueError("start/end are not numbers") from None
    if not (0 <= start <= end) or end - start > 86_400:
        raise ValueError(f"invalid segment times {start}..{end}")
    mids = [m.strip() for m in labels.split(b",")]
    if not mids or any(not m for m in mids):
        raise ValueError("empty label in the label list")
    return ytid, start, end, mids


def _dataset_for(name: str, audio_root: str | None) -> tuple[Dataset, bool]:
    ds, created = Dataset.objects.get_or_create(name=name, defaults={"audio_root": audio_root or ""})
    if audio_root and ds.audio_root != audio_root:
        ds.audio_root = audio_root
        ds.save(update_fields=["audio_root"])
    return ds, created


def _copy(cursor, sql: str, chunks: list[bytes]) -> None:
    with cursor.copy(sql) as cp:
        for chunk in chunks:
            cp.write(chunk)


@dataclass
class _Parsed:
    """What the parse phase hands to the label writes."""

    label_chunks: list[bytes]  # ClipLabel rows of the new clips, COPY text
    merge_rows: list[bytes]  # labels of clips that exist already
    next_id: int  # the first clip id not used
    positive: int = 0
    unique: set[bytes] = field(default_factory=set)


def _checked_inputs(*, source_name: str, dataset_name: str, audio_root: str | None) -> dict:
    """The ontology's MID -> id (as COPY text), or the error that stops the import before
    anything is read or written."""
    if problem := dataset_name_problem(dataset_name):
        raise SegmentImportError(source_name, 0, problem)
    if audio_root and (problem := audio_root_problem(audio_root)):
        raise SegmentImportError(source_name, 0, problem)
    label_ids = {m.encode(): str(i).encode() for m, i in Label.objects.values_list("mid", "id")}
    if not label_ids:
        raise SegmentImportError(source_name, 0, "no ontology loaded; run load_ontology first")
    return label_ids


def _clip_ids_reserve(cur) -> tuple[str, int]:
    """Lock the clip table (nobody else inserts clips while this import holds it) and
    return its id sequence and the next id."""
    clip_table = Clip._meta.db_table
    cur.execute(f"LOCK TABLE {clip_table} IN EXCLUSIVE MODE")
    cur.execute(f"SELECT pg_get_serial_sequence('{clip_table}', 'id')")
    seq = cur.fetchone()[0]
    cur.execute("SELECT nextval(%s)", [seq])
    return seq, cur.fetchone()[0]


def _clips_copy(cur, *, source: BinaryIO, ds: Dataset, label_ids: dict, next_id: int,
                report: ImportReport, bad) -> _Parsed:
    """Parse the file and COPY its new clips; their labels and the labels of clips that
    exist already are returned for the next phases."""
    ds_id = str(ds.id).encode()
    existing: dict[tuple[bytes, float], int] = {
        (y.encode(), s): i
        for y, s, i in Clip.objects.filter(dataset=ds).values_list("ytid", "start_s", "id")
    }
    position = (
        Clip.objects.filter(dataset=ds).order_by("-position").values_list("position", flat=True)
        .first()
    )
    position = -1 if position is None else position
    out = _Parsed(label_chunks=[], merge_rows=[], next_id=next_id)
    label_chunks, merge_rows, unique = out.label_chunks, out.merge_rows, out.unique
    clip_rows: list[bytes] = []
    label_rows: list[bytes] = []
    seen: set[bytes] = set()
    positive = 0
    # Clip rows stream to the server while the file is still being parsed, so
    # PostgreSQL works on one core while Python parses on the other. Labels wait
    # in memory (a few bytes each) for their own COPY.
    with cur.copy(
        f"COPY {Clip._meta.db_table} (id, dataset_id, ytid, start_s, end_s, position, "
        "audio_path, audio_status, audio_error) FROM STDIN"
    ) as clip_copy:
        for lineno, line in iter_lines(source):
            if line is None:
                report.rows_read += 1
                bad(lineno, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            if line.startswith(b"#"):
                for k, v in HEADER_COUNTS_RE.findall(line):
                    report.header_counts[k.decode()] = int(v)
                continue
            report.rows_read += 1
            try:
                ytid, start, end, mids = parse_segment_line(line)
            except ValueError as e:
                bad(lineno, str(e))
                continue
            ids = []
            unknown = None
            for m in mids:
                lid = label_ids.get(m)
                if lid is None:
                    unknown = m
                    break
                ids.append(lid)
            if unknown is not None:
                bad(lineno, f"unknown label {unknown[:80].decode(errors='replace')!r}")
                continue
            key = ytid + b"|" + repr(start).encode()
            if key in seen:
                bad(lineno, f"duplicate segment {ytid.decode()} at {start:.3f} in this file")
                continue
            seen.add(key)
            ids = list(dict.fromkeys(ids))
            positive += len(ids)
            unique.update(ids)
            old = existing.get((ytid, start)) if existing else None
            if old is not None:
                report.clips_existing += 1
                cid = str(old).encode()
                merge_rows.extend(cid + b"\t" + lid + b"\n" for lid in ids)
            else:
                cid = str(next_id).encode()
                next_id += 1
                position += 1
                clip_rows.append(
                    b"%s\t%s\t%s\t%r\t%r\t%d\t\tunknown\t\n"
                    % (cid, ds_id, ytid, start, end, position)
                )
                label_rows.extend(cid + b"\t" + lid + b"\n" for lid in ids)
            if len(clip_rows) >= COPY_BATCH_ROWS:
                clip_copy.write(b"".join(clip_rows))
                label_chunks.append(b"".join(label_rows))
                clip_rows.clear()
                label_rows.clear()
        clip_copy.write(b"".join(clip_rows))
        label_chunks.append(b"".join(label_rows))
    out.next_id, out.positive = next_id, positive
    return out


def _labels_merge(cur, merge_rows: list[bytes]) -> int:
    """Add the labels of clips that exist already (those they lack); returns how many."""
    cur.execute("CREATE TEMP TABLE import_merge (clip_id bigint, label_id bigint) ON COMMIT DROP")
    _copy(cur, "COPY import_merge (clip_id, label_id) FROM STDIN", [b"".join(merge_rows)])
    cur.execute(
        f"INSERT INTO {ClipLabel._meta.db_table} (clip_id, label_id) "
        "SELECT clip_id, label_id FROM import_merge "
        "ON CONFLICT (clip_id, label_id) DO NOTHING"
    )
    added = cur.rowcount
    # ON COMMIT DROP is not enough when this runs inside an outer transaction.
    cur.execute("DROP TABLE import_merge")
    return added


def segments_import(
    *,
    source: BinaryIO,
    source_name: str,
    dataset_name: str,
    audio_root: str | None = None,
    skip_bad: bool = False,
) -> ImportReport:
    """Import one segments CSV into `dataset_name` (created if missing) in one transaction.

    Without skip_bad the first bad row raises SegmentImportError and nothing is written.
    Rows whose (ytid, start) already exist in the dataset add only their missing labels.
    """
    # The name and the audio root are checked before anything is read or written.
    label_ids = _checked_inputs(source_name=source_name, dataset_name=dataset_name,
                                audio_root=audio_root)
    t0 = time.perf_counter()
    report = ImportReport(dataset=dataset_name, source=source_name)
    timings: dict[str, float] = {}

    def bad(lineno: int, reason: str) -> None:
        if not skip_bad:
            raise SegmentImportError(source_name, lineno, reason)
        report.bad_rows.append(BadRow(lineno, reason))

    with transaction.atomic():
        ds, ds_created = _dataset_for(dataset_name, audio_root)
        with connection.cursor() as wrapper:
            cur = wrapper.cursor
            seq, first_id = _clip_ids_reserve(cur)
            # Per-row FK triggers off (when allowed) before any COPY starts.
            fk_triggers_off = _disable_fk_triggers(cur)
            parsed = _clips_copy(cur, source=source, ds=ds, label_ids=label_ids,
                                 next_id=first_id, report=report, bad=bad)
            timings["parse+copy_clips"] = time.perf_counter() - t0
            report.clips_created = parsed.next_id - first_id
            if report.clips_created:
                cur.execute("SELECT setval(%s, %s)", [seq, parsed.next_id - 1])
                _copy(cur, f"COPY {ClipLabel._meta.db_table} (clip_id, label_id) FROM STDIN",
                      parsed.label_chunks)
                report.labels_created = sum(c.count(b"\n") for c in parsed.label_chunks)
            parsed.label_chunks.clear()
            timings["copy_labels"] = time.perf_counter() - t0
            if report.clips_existing:
                report.labels_created += _labels_merge(cur, parsed.merge_rows)
            if fk_triggers_off:
                cur.execute("SET LOCAL session_replication_role = origin")
            if report.clips_created > 10_000:
                cur.execute(f"ANALYZE {Clip._meta.db_table}")
                cur.execute(f"ANALYZE {ClipLabel._meta.db_table}")
        if ds_created and report.clips_created == 0:
            # Nothing usable (every row bad and skipped, or no rows at all): leave no
            # empty dataset behind. Raising rolls the whole transaction back.
            raise SegmentImportError(
                source_name, 0,
                f"no clip could be imported ({report.rows_read} rows read, "
                f"{len(report.bad_rows)} bad); dataset {dataset_name!r} was not created")
    report.positive_labels = parsed.positive
    report.unique_labels = len(parsed.unique)
    report.seconds = time.perf_counter() - t0
    report.timings = timings
    return report


def _disable_fk_triggers(cur) -> bool:
    """Skip per-row foreign-key triggers during COPY when the role may (superuser): every id
    written was just validated in Python or reserved under the table lock, and per-row FK
    checks of millions of rows cost more than the whole rest of the import."""
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    if not (row and row[0]):
        return False
    cur.execute("SET LOCAL session_replication_role = replica")
    return True
