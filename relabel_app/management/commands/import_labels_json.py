from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from relabel_app.audio_matching import dataset_match_audio
from relabel_app.labels_json_import import labels_json_import
from relabel_app.names import dataset_name_problem
from relabel_app.segment_import import SegmentImportError


class Command(BaseCommand):
    help = 'Import {"data": [{"wav": ..., "labels": "mid,mid"}]} (AST/SSAST format) as original labels.'

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--audio-root", help="Folder of audio files to match to clips by YTID.")
        parser.add_argument("--skip-bad", action="store_true")

    def handle(self, *args, path, dataset, audio_root=None, skip_bad=False, **options):
        if problem := dataset_name_problem(dataset):
            raise CommandError(f"--dataset: {problem}\nNothing was imported.")
        if not Path(path).is_file():
            raise CommandError(f"{path}: no such file")
        if audio_root:
            audio_root = str(Path(audio_root).resolve())
        try:
            report = labels_json_import(path=path, dataset_name=dataset, audio_root=audio_root,
                                        skip_bad=skip_bad)
        except SegmentImportError as e:
            raise CommandError(f"{e}\nNothing was imported.") from None
        for b in report.bad_rows:
            self.stderr.write(f"{path}: item {b.line}: skipped: {b.reason}")
        self.stdout.write(
            f"{dataset}: {report.rows_read} items read, {report.clips_created} clips created, "
            f"{report.clips_existing} already present, {report.labels_created} labels added, "
            f"{len(report.bad_rows)} bad items skipped"
        )
        if audio_root:
            m = dataset_match_audio(dataset_name=dataset)
            self.stdout.write(f"audio: {m.matched} matched, {m.unreadable} unreadable, "
                              f"{m.missing} without a file")
