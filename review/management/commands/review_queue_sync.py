import time

from django.core.management.base import BaseCommand, CommandError

from relabel_app.models import Dataset
from review.queue import INLINE_REFRESH_MAX_CLIPS, queue_sync, queue_vacuum


class Command(BaseCommand):
    help = (
        "Build or refresh the review queue of datasets (slots for new clips, the overlap, "
        "the 'most uncertain first' ranks from the latest finished run). The queue also "
        "refreshes itself on demand; run this after importing or relabeling millions of "
        "clips so that no reviewer waits for it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", action="append", default=[],
                            help="dataset name (repeatable; default: all)")
        parser.add_argument("--force", action="store_true", help="rebuild ranks even if fresh")

    def handle(self, *args, dataset, force, **options):
        qs = Dataset.objects.order_by("name")
        if dataset:
            qs = qs.filter(name__in=dataset)
            missing = set(dataset) - set(qs.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no such dataset: {', '.join(sorted(missing))}")
        for ds in qs:
            t0 = time.perf_counter()
            changed = queue_sync(dataset=ds, force=force)
            if changed and ds.clips.order_by("-position").values_list(
                "position", flat=True
            ).first() >= INLINE_REFRESH_MAX_CLIPS:
                queue_vacuum()
            word = "refreshed" if changed else "already fresh"
            self.stdout.write(f"{ds.name}: {word} ({time.perf_counter() - t0:.2f} s)")
