from django.core.management.base import BaseCommand, CommandError

from curation.gold_clips import GoldError, gold_import_segments
from relabel_app.models import Dataset


class Command(BaseCommand):
    help = (
        "Import gold answers from a segments CSV (three '#' lines, then YTID, start, end, "
        "\"mid,mid\"): each row's clip becomes a gold clip whose listed labels are present and "
        "every other label absent. One transaction: a bad row stops it and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Segments CSV of gold answers.")
        parser.add_argument("--dataset", required=True, help="Dataset whose clips the rows name.")

    def handle(self, *args, path, dataset, **options):
        ds = Dataset.objects.filter(name=dataset).first()
        if ds is None:
            raise CommandError(f"no dataset named {dataset!r}")
        try:
            r = gold_import_segments(path=path, dataset=ds)
        except GoldError as e:
            raise CommandError(f"{e}\nNothing was imported.") from None
        self.stdout.write(f"{dataset}: {r['clips']:,} gold clips with {r['labels']:,} present "
                          "labels imported")
