from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pipeline.models import PipelineRun
from pipeline.profiles import ProfileError
from pipeline.services import (
    run_cancel,
    run_dispatch,
    run_get_or_create,
    run_progress,
    run_resume,
    run_wait,
)
from pipeline.worker import WorkerExited, local_worker
from relabel_app.models import Clip, Dataset


class Command(BaseCommand):
    help = (
        "Run the model chain (caption, predict, match, filter) over a dataset. The same "
        "command twice continues the existing run for that dataset and profile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--profile", required=True, help="tiny, paper, api, or a .json path")
        parser.add_argument("--clips", nargs="+", help="Only these YTIDs.")
        parser.add_argument("--wait", action="store_true",
                            help="Show progress until done (starts a worker if none runs).")
        parser.add_argument("--new", action="store_true", help="Start a fresh run.")
        parser.add_argument("--no-worker", action="store_true",
                            help="With --wait, never start a worker of our own.")
        parser.add_argument("--cancel", action="store_true",
                            help="Cancel the run of this dataset and profile (resume by running again).")
        parser.add_argument("--timeout", type=float, default=None)

    def handle(self, *args, dataset, profile, clips=None, wait=False, new=False,
               no_worker=False, timeout=None, cancel=False, **options):
        try:
            ds = Dataset.objects.get(name=dataset)
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset {dataset!r}") from None
        clip_ids = None
        if clips:
            clip_ids = list(Clip.objects.filter(dataset=ds, ytid__in=clips).values_list("id", flat=True))
            if not clip_ids:
                raise CommandError("none of the given YTIDs are in the dataset")
        if cancel:
            run = PipelineRun.objects.filter(dataset=ds, profile_name=Path(profile).stem) \
                .order_by("-created_at").first()
            if run is None:
                raise CommandError("no run to cancel")
            run_cancel(run=run)
            self.stdout.write(f"run {run.pk} cancelled; run the same command without --cancel "
                              "to resume")
            return
        try:
            run, created = run_get_or_create(dataset=ds, profile=profile, clip_ids=clip_ids, new=new)
        except ProfileError as e:
            raise CommandError(str(e)) from None
        if run.status == PipelineRun.Status.CANCELLED:
            run_resume(run=run)
            run.refresh_from_db()
        chunks = run_dispatch(run=run)
        self.stdout.write(
            f"run {run.pk} ({'new' if created else 'continued'}), profile {run.profile_name}, "
            f"{run.clip_count} clips; {chunks} chunks queued"
        )
        if run.random_weights:
            self.stdout.write("note: the tiny profile uses random-weight test models; "
                              "its captions and labels mean nothing.")
        if not wait:
            return
        try:
            with local_worker(start=not no_worker, say=self.stdout.write) as check_worker:
                bar = tqdm(total=run.clip_count, unit="clip", desc=f"run {run.pk}")

                def show(p):
                    bar.n = p.finished
                    bar.set_postfix(**p.stages, failed=p.failed, refresh=False)
                    bar.refresh()
                    check_worker()

                run_wait(run=run, on_progress=show, timeout_s=timeout)
                bar.close()
        except WorkerExited as e:
            raise CommandError(str(e)) from None
        p = run_progress(run=run)
        self.stdout.write(
            f"run {run.pk}: {p.status}; {p.complete} clips through all stages, {p.failed} failed"
        )
