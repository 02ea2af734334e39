from django.core.management.base import BaseCommand, CommandError

from pipeline.embeddings import ClipEmbedding, EmbeddingSpace
from relabel_app.models import Dataset
from search.models import SearchIndex
from search.services import index_build_now


class Command(BaseCommand):
    help = ("Build the vector index of a dataset's clip embeddings (one per CLAP model, or "
            "the one of --model) in this process, replacing the served version when done.")

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--model", help="CLAP model id (as stored with the embeddings)")
        parser.add_argument("--kind", choices=["flat", "ivf-sq8", "numpy"],
                            help="Force an index kind (default: by size)")

    def handle(self, *args, dataset, model=None, kind=None, **options):
        try:
            ds = Dataset.objects.get(name=dataset)
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset {dataset!r}") from None
        spaces = EmbeddingSpace.objects.filter(
            pk__in=ClipEmbedding.objects.filter(clip__dataset=ds).values("space_id"))
        if model:
            spaces = spaces.filter(model_id=model)
        spaces = list(spaces.order_by("pk"))
        if not spaces:
            raise CommandError(
                f"no embeddings for {model!r} in {ds.name}" if model else
                f"{ds.name} has no clip embeddings: run the pipeline or "
                f"`manage.py embed_clips --dataset {ds.name}` first")
        failed = False
        for space in spaces:
            idx = index_build_now(dataset=ds, space=space, kind=kind)
            if idx.status != SearchIndex.Status.READY or idx.error:
                failed = True
                self.stderr.write(f"{space.model_id}: {idx.error}")
                continue
            self.stdout.write(f"{ds.name} / {space.model_id}: v{idx.version}, {idx.kind}, "
                              f"{idx.clip_count} clips, {idx.size_bytes / 1e6:.1f} MB, "
                              f"{idx.build_seconds:.1f} s")
        if failed:
            raise CommandError("some indexes failed to build (see above)")
