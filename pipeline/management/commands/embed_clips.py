from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pipeline.embed_jobs import embed_dispatch, embed_profile_spec, embed_progress, embed_wait
from pipeline.profiles import ProfileError
from pipeline.worker import WorkerExited, local_worker
from relabel_app.models import Dataset


class Command(BaseCommand):
    help = (
        "Compute the CLAP audio embedding of every clip of a dataset with a profile's CLAP "
        "alone (no LLM stages), for search. Resumable: the same command again queues only "
        "the clips still missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--profile", default="paper", help="paper, tiny, or a .json path")
        parser.add_argument("--wait", action="store_true",
                            help="Show progress until done (starts a worker if none runs).")
        parser.add_argument("--no-worker", action="store_true",
                            help="With --wait, never start a worker of our own.")
        parser.add_argument("--chunk-size", type=int, default=None)
        parser.add_argument("--timeout", type=float, default=None)

    def handle(self, *args, dataset, profile, wait=False, no_worker=False, chunk_size=None,
               timeout=None, **options):
        try:
            ds = Dataset.objects.get(name=dataset)
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset {dataset!r}") from None
        try:
            spec, random_weights = embed_profile_spec(profile)
        except ProfileError as e:
            raise CommandError(str(e)) from None
        if chunk_size is not None and chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        from pipeline.profiles import resolve_profile

        size = chunk_size or int(resolve_profile(profile, model_dir=settings.MODEL_DIR)
                                 .get("chunk_size", 16))
        chunks = embed_dispatch(dataset=ds, spec=spec, random_weights=random_weights,
                                chunk_size=size)
        p = embed_progress(dataset=ds, spec=spec)
        self.stdout.write(f"{ds.name}: {p.embedded} of {p.total} clips embedded with "
                          f"{p.model_id}; {chunks} chunks queued on 'clap'")
        if random_weights:
            self.stdout.write("note: this profile's CLAP has random weights; its similarities "
                              "mean nothing.")
        if not wait:
            return
        try:
            with local_worker(start=not no_worker, say=self.stdout.write) as check_worker:
                bar = tqdm(total=p.total, initial=p.embedded, unit="clip", desc="embed")

                def show(q):
                    bar.n = q.embedded
                    bar.refresh()
                    check_worker()

                p = embed_wait(dataset=ds, spec=spec, timeout_s=timeout, on_progress=show)
                bar.close()
        except WorkerExited as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"{p.embedded} of {p.total} clips embedded"
                          + (f"; {p.missing} missing (unreadable audio? see the worker log)"
                             if p.missing else ""))
