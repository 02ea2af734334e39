from django.core.management.base import BaseCommand

from pipeline.services import runs_recover_interrupted, stall_seconds


class Command(BaseCommand):
    help = (
        "Recover pipeline runs whose workers are gone (running, clips left, no clip result "
        f"written for {int(stall_seconds())} s): re-queue each once, stop it (cancelled, with "
        "the reason) the second time. Every starting worker and the run's page do the same; "
        "run this from cron if neither happens often."
    )

    def handle(self, *args, **options):
        done = runs_recover_interrupted()
        self.stdout.write(
            f"re-queued: {', '.join(map(str, done['requeued'])) or 'none'}; "
            f"stopped: {', '.join(map(str, done['stopped'])) or 'none'}"
        )
