import io
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from relabel_app.audio_matching import dataset_match_audio
from relabel_app.models import Dataset
from relabel_app.names import dataset_name_problem
from relabel_app.segment_import import segments_import

DESCRIPTION = (
    "Synthetic demo clips made on this machine (tones, noises, sirens, telephone tones, "
    "espeak-ng speech). A few original labels are deliberately wrong or missing so that "
    "review has something to find."
)


class Command(BaseCommand):
    help = "Make the `demo` dataset: short WAV clips synthesized on the machine, with original labels."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="demo")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, dataset="demo", seed=0, **options):
        from relabel_app.demo_audio import demo_segments_csv, synthesize_demo_clips

        if problem := dataset_name_problem(dataset):  # the name becomes a folder below
            raise CommandError(f"--dataset: {problem}")
        out = settings.AUDIO_ROOT / dataset
        out.mkdir(parents=True, exist_ok=True)
        clips = synthesize_demo_clips(out, seed=seed)
        # What was altered stays beside the audio, for checking review results; the UI
        # shows reviewers only the original labels.
        (out / "demo_truth.json").write_text(json.dumps(
            [{"ytid": c.ytid, "true_labels": c.true_labels, "original_labels": c.original_labels,
              "notes": c.notes} for c in clips], indent=2))
        csv = demo_segments_csv(clips).encode()
        report = segments_import(source=io.BytesIO(csv), source_name="demo segments",
                                 dataset_name=dataset, audio_root=str(out))
        Dataset.objects.filter(name=dataset).update(synthetic=True, description=DESCRIPTION)
        m = dataset_match_audio(dataset_name=dataset)
        self.stdout.write(
            f"{dataset}: {len(clips)} synthetic clips in {out}; {report.clips_created} new clips, "
            f"{m.matched} with audio, {m.unreadable} unreadable"
        )
