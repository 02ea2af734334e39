"""The report's two CSVs: AudioSet's quality-assessment format per source, and the full
per-class table. Spreadsheet-safe through relabel_app.csv_safety (MIDs and numbers never
start like a formula; the source name is passed through the rule anyway)."""

from __future__ import annotations

import csv
import io

from relabel_app.csv_safety import spreadsheet_safe

QA_HEADER = ["label_id", "num_rated", "num_true"]
FULL_HEADER = ["mid", "source", "rated", "true", "unsure", "precision", "low", "high"]


def _f(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def qa_csv(report: dict, source: str) -> str:
    if source not in report["study"]["sources"]:
        raise ValueError(f"source {source!r} is not one of the study's sources")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(QA_HEADER)
    for r in report["classes"]:
        if r.source == source:
            w.writerow([spreadsheet_safe(r.mid), r.rated, r.true])
    return out.getvalue()


def full_csv(report: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FULL_HEADER)
    for r in report["classes"]:
        w.writerow([spreadsheet_safe(r.mid), spreadsheet_safe(r.source), r.rated, r.true,
                    r.unsure, _f(r.estimate.value), _f(r.estimate.low), _f(r.estimate.high)])
    return out.getvalue()
