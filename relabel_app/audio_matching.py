"""Match a folder of audio files to a dataset's clips by YTID and record what each file is."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from .models import Clip, Dataset


@dataclass
class AudioMatchReport:
    matched: int = 0
    unreadable: int = 0
    missing: int = 0
    unmatched_files: int = 0


def dataset_match_audio(*, dataset_name: str) -> AudioMatchReport:
    """Scan the dataset's audio root, probe every file that belongs to a clip, and store
    path (relative to the root), duration, sample rate and status for every clip."""
    from .audio_files import probe_audio, scan_audio_folder

    ds = Dataset.objects.get(name=dataset_name)
    root = ds.resolved_audio_root()
    report = AudioMatchReport()
    by_ytid: dict[str, list[tuple[int, float]]] = {}
    for cid, ytid, start in Clip.objects.filter(dataset=ds).values_list("id", "ytid", "start_s"):
        by_ytid.setdefault(ytid, []).append((cid, start))
    rows: list[tuple[int, str, str, str, float | None, int | None]] = []
    found: set[int] = set()
    if root.is_dir():
        for rel, ytid, start in scan_audio_folder(root):
            cands = by_ytid.get(ytid)
            if not cands:
                report.unmatched_files += 1
                continue
            if start is not None:
                cands = [c for c in cands if abs(c[1] - start) < 0.5] or cands[:0]
            if not cands:
                report.unmatched_files += 1
                continue
            cid = cands[0][0]
            if cid in found:
                continue
            found.add(cid)
            try:
                info = probe_audio(root / rel)
            except Exception as e:  # any unreadable file becomes that clip's error state
                rows.append((cid, str(rel), Clip.AudioStatus.ERROR, str(e)[:500], None, None))
                report.unreadable += 1
                continue
            rows.append((cid, str(rel), Clip.AudioStatus.OK, "", info.duration_s, info.sample_rate))
            report.matched += 1
    with transaction.atomic(), connection.cursor() as wrapper:
        cur = wrapper.cursor
        table = Clip._meta.db_table
        cur.execute(
            "CREATE TEMP TABLE audio_match (id bigint, path text, status text, err text, "
            "dur double precision, sr integer) ON COMMIT DROP"
        )
        with cur.copy("COPY audio_match FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        cur.execute(
            f"UPDATE {table} c SET audio_path = m.path, audio_status = m.status, "
            "audio_error = m.err, duration_s = m.dur, sample_rate = m.sr "
            "FROM audio_match m WHERE c.id = m.id"
        )
        cur.execute(
            f"UPDATE {table} SET audio_status = %s, audio_path = '', audio_error = '', "
            "duration_s = NULL, sample_rate = NULL "
            "WHERE dataset_id = %s AND id NOT IN (SELECT id FROM audio_match)",
            [Clip.AudioStatus.MISSING, ds.id],
        )
        report.missing = cur.rowcount
        cur.execute("DROP TABLE audio_match")
    return report
