"""Import an external label set (a published relabeling) as a run without model outputs.

The file is the `{"data": [{"wav", "labels"}]}` JSON of AST/SSAST and the published
relabeled set, or an AudioSet segments CSV. Each item names a clip (YTID, and the start
when the file name or the CSV row carries one) and its labels; the labels become
Candidates of a PipelineRun(kind=external) with tier "external", kept and selected, and no
CLAP score, so the set can be reviewed and audited like any run.

Speed: the file is parsed in Python (labels validated against the ontology there) and
streamed into two temporary tables with COPY; matching items to the dataset's clips,
finding duplicates and writing ClipResult and Candidate rows are set-based statements
inside PostgreSQL. Memory stays at one COPY batch whatever the number of clips (the JSON
document itself is parsed whole, as the other JSON importer does).

Everything runs in one transaction: a bad item stops the import with its item (JSON) or
line (CSV) number and nothing is written, unless ``skip_bad`` is set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db import connection, transaction
from django.utils import timezone

from relabel_app.audio_files import ytid_from_filename
from relabel_app.json_stream import BOM, JsonFileError, iter_data_items
from relabel_app.models import Clip, Dataset, Label
from relabel_app.segment_import import (
    MAX_LINE_BYTES,
    _disable_fk_triggers,
    iter_lines,
    parse_segment_line,
)

from . import chain
from .models import Candidate, ClipResult, PipelineRun, StageStatus

COPY_BATCH_ITEMS = 100_000
# Two starts closer than this are the same segment (files write 3 decimals, or ms).
START_TOLERANCE_S = 0.0005
UNMATCHED_SAMPLE = 10
# Namespace of pg_advisory_xact_lock(ns, dataset_id): one label-set import per dataset.
_IMPORT_LOCK_NS = 0x4C53  # "LS"
_ITEMS, _ITEM_LABELS = "labelset_items", "labelset_item_labels"
_MATCH, _NEW = "labelset_match", "labelset_candidates"


class LabelsetImportError(Exception):
    """A bad item or file stopped the import; nothing of it was written."""

    def __init__(self, source: str, where: str, reason: str):
        self.source, self.where, self.reason = source, where, reason
        super().__init__(f"{source}: {where + ': ' if where else ''}{reason}")


@dataclass
class BadItem:
    where: str  # "item 12" (JSON) or "line 12" (CSV)
    reason: str


@dataclass
class LabelsetImportReport:
    run_id: int
    created: bool
    source: str
    format: str
    items_read: int = 0
    items_matched: int = 0
    clips_matched: int = 0
    candidates: int = 0  # the run's candidates after the import
    added_candidates: int = 0
    removed_candidates: int = 0  # of an earlier import under the same name
    unmatched_items: int = 0
    unmatched_ytids: list[str] = field(default_factory=list)
    ambiguous_items: int = 0
    bad_items: list[BadItem] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def items_per_s(self) -> float:
        return self.items_read / self.seconds if self.seconds else 0.0


@dataclass
class _Item:
    number: int  # JSON: 1-based item index; CSV: line number
    ytid: str
    start: float | None
    mids: list[str]


def _detect_format(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".txt"):
        return "csv"
    return "json" if head.removeprefix(BOM).lstrip()[:1] in (b"{", b"[") else "csv"


def _split_mids(text: str) -> list[str]:
    """Labels of a JSON item: "mid,mid" (quotes tolerated); "" is a clip with no label."""
    text = text.replace('"', "").strip()
    if not text:
        return []
    mids = [m.strip() for m in text.split(",")]
    if any(not m for m in mids):
        raise ValueError("empty label in the label list")
    return mids


def _json_items(f: BinaryIO, path: Path, source: str, bad) -> Iterator[_Item | None]:
    """The items of the file, streamed (relabel_app.json_stream): constant memory."""
    items = iter_data_items(f, reopen=lambda: path.open("rb"))
    n = 0
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except JsonFileError as e:
            raise LabelsetImportError(source, f"line {e.line}" if e.line else "",
                                      e.reason) from None
        n += 1
        if not isinstance(item, dict) or not isinstance(item.get("wav"), str) \
                or not isinstance(item.get("labels"), str):
            bad(n, 'item needs string fields "wav" and "labels"')
            yield None
            continue
        name = Path(item["wav"]).name
        parsed = ytid_from_filename(name)
        if parsed is None:
            bad(n, f"no YouTube id in file name {name[:100]!r}")
            yield None
            continue
        try:
            mids = _split_mids(item["labels"])
        except ValueError as e:
            bad(n, str(e))
            yield None
            continue
        yield _Item(n, parsed[0], parsed[1], mids)


class _HashingReader:
    """A binary file read through once, hashing and counting the bytes that pass: the CSV
    is streamed, never held whole in memory (a 1 GB line must not take 1 GB)."""

    def __init__(self, f: BinaryIO):
        self.f, self.sha256, self.bytes = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


def _csv_items(f: BinaryIO, bad) -> Iterator[_Item | None]:
    for lineno, line in iter_lines(f):
        if line is None:
            bad(lineno, f"line longer than {MAX_LINE_BYTES} bytes")
            yield None
            continue
        line = line.rstrip(b"\r")
        if not line.strip() or line.startswith(b"#"):
            continue
        try:
            ytid, start, _end, mids = parse_segment_line(line)
        except ValueError as e:
            bad(lineno, str(e))
            yield None
            continue
        yield _Item(lineno, ytid.decode(), start, [m.decode(errors="replace") for m in mids])


def _copy_text(value: str) -> str:
    """A value for PostgreSQL's COPY text format (YTIDs are [A-Za-z0-9_-], but be safe)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


@dataclass
class _Matched:
    """What matching the file's items to the dataset's clips found."""

    unmatched: int
    unmatched_ytids: list[str]
    items_matched: int
    ambiguous: int
    clips_matched: int


class _BadItems:
    """A bad item: stops the import, or (``skip_bad``) is listed in the report."""

    def __init__(self, source: str, unit: str, skip_bad: bool) -> None:
        self.source, self.unit, self.skip_bad = source, unit, skip_bad
        self.items: list[BadItem] = []

    def __call__(self, number: int, reason: str) -> None:
        if not self.skip_bad:
            raise LabelsetImportError(self.source, f"{self.unit} {number}", reason)
        self.items.append(BadItem(f"{self.unit} {number}", reason))


def _checked_inputs(path: Path, name: str, dataset_name: str) -> tuple[str, Dataset, dict]:
    """The file's format, the dataset and the ontology's MID -> id, or the error that
    stops the import before anything is read."""
    source = str(path)
    max_name = PipelineRun._meta.get_field("profile_name").max_length
    if not name or len(name) > max_name:
        raise LabelsetImportError(source, "", f"the name must be 1 to {max_name} characters")
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise LabelsetImportError(source, "", f"cannot read: {e.strerror or e}") from None
    fmt = _detect_format(path, head)
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise LabelsetImportError(
            source, "", f"no dataset named {dataset_name!r}; import its clips first"
        )
    label_ids = dict(Label.objects.values_list("mid", "id"))
    if not label_ids:
        raise LabelsetImportError(source, "", "no ontology loaded; run load_ontology first")
    return fmt, dataset, label_ids


def _temp_tables_create(cur) -> None:
    for table in (_ITEMS, _ITEM_LABELS, _MATCH, _NEW):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(
        f"CREATE TEMP TABLE {_ITEMS} (item integer NOT NULL, ytid text NOT NULL, "
        "start_s float8) ON COMMIT DROP"
    )
    cur.execute(
        f"CREATE TEMP TABLE {_ITEM_LABELS} (item integer NOT NULL, label_id bigint NOT NULL)"
        " ON COMMIT DROP"
    )


def _items_copy(cur, items: Iterator[_Item | None], label_ids: dict, bad: _BadItems) -> int:
    """Parse and stream the items into the temporary tables (COPY, in batches); returns
    the number of items read."""
    items_read = 0
    item_rows: list[str] = []
    label_rows: list[str] = []

    def flush() -> None:
        if item_rows:
            with cur.copy(f"COPY {_ITEMS} (item, ytid, start_s) FROM STDIN") as cp:
                cp.write("".join(item_rows))
        if label_rows:
            with cur.copy(f"COPY {_ITEM_LABELS} (item, label_id) FROM STDIN") as cp:
                cp.write("".join(label_rows))
        item_rows.clear()
        label_rows.clear()

    for it in items:
        items_read += 1
        if it is None:  # reported by bad() already
            continue
        ids = []
        for mid in it.mids:
            lid = label_ids.get(mid)
            if lid is None:
                bad(it.number, f"unknown label {mid[:80]!r}")
                break
            ids.append(lid)
        else:
            start = "\\N" if it.start is None else repr(float(it.start))
            item_rows.append(f"{it.number}\t{_copy_text(it.ytid)}\t{start}\n")
            label_rows.extend(f"{it.number}\t{lid}\n" for lid in dict.fromkeys(ids))
            if len(item_rows) >= COPY_BATCH_ITEMS:
                flush()
    flush()
    return items_read


def _items_match(cur, *, dataset: Dataset, bad: _BadItems, items_read: int) -> _Matched:
    """Match the items to the dataset's clips (temporary table _MATCH); a second item for
    a clip already given is bad. No match at all stops the import."""
    cur.execute(f"ANALYZE {_ITEMS}")
    clip_t = Clip._meta.db_table
    cur.execute(
        f"""
        CREATE TEMP TABLE {_MATCH} ON COMMIT DROP AS
        SELECT i.item, c.id AS clip_id, c.ytid, c.start_s
        FROM {_ITEMS} i JOIN {clip_t} c
          ON c.dataset_id = %s AND c.ytid = i.ytid
         AND (i.start_s IS NULL OR abs(c.start_s - i.start_s) < %s)
        """,
        [dataset.pk, START_TOLERANCE_S],
    )
    cur.execute(
        f"SELECT count(*) FROM {_ITEMS} i "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_MATCH} m WHERE m.item = i.item)"
    )
    unmatched = cur.fetchone()[0]
    cur.execute(
        f"SELECT i.ytid FROM {_ITEMS} i "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_MATCH} m WHERE m.item = i.item) "
        "ORDER BY i.item LIMIT %s",
        [UNMATCHED_SAMPLE],
    )
    unmatched_ytids = [r[0] for r in cur.fetchall()]
    # A clip given by two items (the same file twice, or Y<id>.wav beside <id>.wav):
    # the later item is bad.
    cur.execute(
        f"""
        SELECT item, ytid, start_s, first FROM (
            SELECT item, ytid, start_s, min(item) OVER (PARTITION BY clip_id) AS first
            FROM {_MATCH}) m
        WHERE item > first ORDER BY item
        """
    )
    dupes = cur.fetchall()
    for number, ytid, start_s, first in dupes:
        bad(number, f"clip {ytid} at {start_s:.3f} s is already given by {bad.unit} {first}")
    if dupes:
        cur.execute(
            f"DELETE FROM {_MATCH} m USING (SELECT clip_id, min(item) AS first "
            f"FROM {_MATCH} GROUP BY clip_id) f "
            "WHERE f.clip_id = m.clip_id AND m.item > f.first"
        )
    cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE n > 1), "
        f"(SELECT count(DISTINCT clip_id) FROM {_MATCH}) FROM "
        f"(SELECT item, count(*) AS n FROM {_MATCH} GROUP BY item) per_item"
    )
    items_matched, ambiguous, clips_matched = cur.fetchone()
    if not items_matched:
        # Most likely the wrong dataset: an empty "done" run would look like a result.
        sample = ", ".join(unmatched_ytids[:5])
        raise LabelsetImportError(
            bad.source, "",
            f"none of its {items_read:,} items matches a clip of dataset "
            f"{dataset.name!r} (first YTIDs: {sample or 'none'}); is it the right dataset?",
        )
    return _Matched(unmatched, unmatched_ytids, items_matched, ambiguous, clips_matched)


def _run_take(cur, *, dataset: Dataset, name: str, config: dict,
              user) -> tuple[PipelineRun, bool, int]:
    """The external run of this name: created, or the earlier one with what the new file
    no longer gives removed. Returns (run, created, candidates removed)."""
    run = (
        PipelineRun.objects.select_for_update()
        .filter(dataset=dataset, kind=PipelineRun.Kind.EXTERNAL, profile_name=name)
        .order_by("-created_at", "-id")
        .first()
    )
    created = run is None
    if created:
        run = PipelineRun.objects.create(
            dataset=dataset, kind=PipelineRun.Kind.EXTERNAL, profile_name=name,
            config=config, created_by=user,
        )
    cand_t, result_t = Candidate._meta.db_table, ClipResult._meta.db_table
    cur.execute(
        f"CREATE TEMP TABLE {_NEW} ON COMMIT DROP AS "
        f"SELECT DISTINCT m.clip_id, l.label_id "
        f"FROM {_MATCH} m JOIN {_ITEM_LABELS} l ON l.item = m.item"
    )
    cur.execute(f"ANALYZE {_NEW}")
    cur.execute(f"ANALYZE {_MATCH}")
    removed = 0
    if not created:
        # A re-import changes only what changed: deleting every row and inserting it
        # again costs twice as much (each insert meets its own deleted twin in the
        # unique index). Done before the FK triggers go off, so a row that refers to
        # one of these stops us rather than being left dangling.
        cur.execute(
            f"DELETE FROM {cand_t} c WHERE c.run_id = %s AND NOT EXISTS ("
            f"SELECT 1 FROM {_NEW} n WHERE n.clip_id = c.clip_id "
            "AND n.label_id = c.label_id AND c.attempt = 0)",
            [run.pk],
        )
        removed = cur.rowcount
        cur.execute(
            f"DELETE FROM {result_t} r WHERE r.run_id = %s AND NOT EXISTS ("
            f"SELECT 1 FROM {_MATCH} m WHERE m.clip_id = r.clip_id)",
            [run.pk],
        )
    return run, created, removed


def _results_write(cur, *, run: PipelineRun, created: bool) -> tuple[int, int]:
    """Results and candidates, set-based; the temporary tables dropped. Returns (candidates
    added, the run's candidates)."""
    cand_t, result_t = Candidate._meta.db_table, ClipResult._meta.db_table
    fk_off = _disable_fk_triggers(cur)
    done = StageStatus.DONE.value
    # Every stage done; the other columns (empty outputs) are database defaults.
    status_cols = ", ".join(chain.status_fields())
    status_vals = ", ".join(f"'{done}'" for _ in chain.names())
    # On a re-import, rows that are already there stay as they are.
    new_results = "" if created else (
        f"WHERE NOT EXISTS (SELECT 1 FROM {result_t} r "
        "WHERE r.run_id = %(run)s AND r.clip_id = m.clip_id)"
    )
    new_candidates = "" if created else (
        f"WHERE NOT EXISTS (SELECT 1 FROM {cand_t} c WHERE c.run_id = %(run)s "
        "AND c.clip_id = n.clip_id AND c.attempt = 0 AND c.label_id = n.label_id)"
    )
    cur.execute(
        f"""
        INSERT INTO {result_t}
            (run_id, clip_id, {status_cols})
        SELECT %(run)s, clip_id, {status_vals}
        FROM (SELECT DISTINCT clip_id FROM {_MATCH}) m {new_results}
        ORDER BY clip_id
        """,
        {"run": run.pk},
    )
    cur.execute(
        f"""
        INSERT INTO {cand_t}
            (run_id, clip_id, label_id, attempt, tier, phrase, match_score, clap_score,
             kept, selected)
        SELECT %(run)s, n.clip_id, n.label_id, 0, %(tier)s, '', NULL, NULL, true, true
        FROM {_NEW} n {new_candidates}
        ORDER BY n.clip_id, n.label_id
        """,
        {"run": run.pk, "tier": Candidate.Tier.EXTERNAL.value},
    )
    added = cur.rowcount
    cur.execute(f"SELECT count(*) FROM {_NEW}")
    candidates = cur.fetchone()[0]
    if fk_off:
        cur.execute("SET LOCAL session_replication_role = origin")
    for table in (_ITEMS, _ITEM_LABELS, _MATCH, _NEW):
        # ON COMMIT DROP is not enough when this runs inside an outer transaction.
        cur.execute(f"DROP TABLE {table}")
    if added > 100_000:
        cur.execute(f"ANALYZE {Candidate._meta.db_table}")
        cur.execute(f"ANALYZE {ClipResult._meta.db_table}")
    return added, candidates


def _run_finish(run: PipelineRun, config: dict, clips_matched: int) -> None:
    now = timezone.now()
    config["imported_at"] = now.isoformat()
    run.config = config
    run.status = PipelineRun.Status.DONE
    run.clip_count = clips_matched
    run.started_at = run.finished_at = now
    run.save(update_fields=["config", "status", "clip_count", "started_at", "finished_at"])
    from .signals import run_finished

    transaction.on_commit(lambda: run_finished.send(sender=PipelineRun, run=run))


def labelset_import(
    *,
    path: str | Path,
    dataset_name: str,
    name: str,
    skip_bad: bool = False,
    user=None,
) -> LabelsetImportReport:
    """Import the label set at ``path`` into the dataset as the external run ``name``.

    Importing the same name again into the same dataset replaces that run's candidates
    and results (the run keeps its id). Items whose clip is not in the dataset are counted
    and sampled in the report, never written. Raises LabelsetImportError on a missing
    dataset, an unreadable file, or (without ``skip_bad``) the first bad item: an
    unknown MID, a malformed item, or a second item for a clip already given."""
    t0 = time.perf_counter()
    path = Path(path)
    source = str(path)
    name = name.strip()
    fmt, dataset, label_ids = _checked_inputs(path, name, dataset_name)
    bad = _BadItems(source, "item" if fmt == "json" else "line", skip_bad)
    config = {
        "name": name,
        "source": str(path.resolve()),
        "format": fmt,
        "sha256": None,  # set once the file was read through
        "bytes": None,
        "external": True,
        "random_weights": False,
    }
    timings: dict[str, float] = {}

    with transaction.atomic(), connection.cursor() as wrapper, ExitStack() as files:
        # Both formats are streamed (never the whole file in memory) and hashed as read.
        reader = _HashingReader(files.enter_context(path.open("rb")))
        items = _json_items(reader, path, source, bad) if fmt == "json" else _csv_items(reader, bad)
        cur = wrapper.cursor
        # Two imports of one dataset would race on the run's rows; the second waits.
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK_NS, dataset.pk])
        _temp_tables_create(cur)
        items_read = _items_copy(cur, items, label_ids, bad)
        del items
        config.update(sha256=reader.sha256.hexdigest(), bytes=reader.bytes)
        timings["parse+copy"] = time.perf_counter() - t0
        m = _items_match(cur, dataset=dataset, bad=bad, items_read=items_read)
        timings["match"] = time.perf_counter() - t0
        run, created, removed = _run_take(cur, dataset=dataset, name=name, config=config,
                                          user=user)
        timings["replace"] = time.perf_counter() - t0
        added, candidates = _results_write(cur, run=run, created=created)
        timings["write"] = time.perf_counter() - t0
        config.update(
            items=items_read, items_matched=m.items_matched, unmatched_items=m.unmatched,
            bad_items=len(bad.items),
        )
        _run_finish(run, config, m.clips_matched)

    return LabelsetImportReport(
        run_id=run.pk, created=created, source=source, format=fmt, items_read=items_read,
        items_matched=m.items_matched, clips_matched=m.clips_matched, candidates=candidates,
        added_candidates=added, removed_candidates=removed, unmatched_items=m.unmatched,
        unmatched_ytids=m.unmatched_ytids, ambiguous_items=m.ambiguous, bad_items=bad.items,
        seconds=time.perf_counter() - t0, timings=timings,
    )
