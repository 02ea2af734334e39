import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


def _on_run_finished(sender, run, **kwargs) -> None:
    from .snapshots import audit_snapshot_after_run

    try:
        audit_snapshot_after_run(run=run)
    except Exception:  # a snapshot request must never fail a run or an import
        log.exception("could not request an audit snapshot for run %s", run.pk)


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curated set, export and audits"

    def ready(self) -> None:
        from pipeline.signals import run_finished

        run_finished.connect(_on_run_finished, dispatch_uid="curation.audit_snapshot_run")
