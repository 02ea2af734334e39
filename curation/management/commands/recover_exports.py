from django.core.management.base import BaseCommand

from curation.export_jobs import export_jobs_recover


class Command(BaseCommand):
    help = (
        "Recover export jobs whose worker is gone (no heartbeat for "
        "RELABEL_EXPORT_HEARTBEAT_STALE_S, or its process on this machine died): re-queue "
        "each once, fail it with the reason the second time, remove partial files. The "
        "exports page and every starting worker do the same; run this from cron if neither "
        "happens often."
    )

    def handle(self, *args, **options):
        done = export_jobs_recover()
        self.stdout.write(
            f"re-queued: {', '.join(map(str, done['requeued'])) or 'none'}; "
            f"failed: {', '.join(map(str, done['failed'])) or 'none'}"
        )
