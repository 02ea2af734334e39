"""Where a finished export's file is, refusing any path that leaves settings.EXPORT_DIR."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from curation.models import ExportJob


def export_file_path(*, job: ExportJob) -> Path | None:
    """The file of a finished export, or None (not done, no path, file gone, or a stored
    path that points outside the export folder)."""
    if job.status != ExportJob.Status.DONE or not job.path:
        return None
    root = Path(settings.EXPORT_DIR).resolve()
    path = (root / job.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
