import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Convert a laion-clap .pt checkpoint (e.g. music_speech_audioset_epoch_15_esc_89.98.pt) "
        "into a transformers ClapModel folder that a profile's clap.model can name. Every key "
        "is mapped or accounted for; a key left over, missing or of the wrong shape is an "
        "error naming it, and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", metavar="PATH.pt", help="laion-clap checkpoint.")
        parser.add_argument("--out", required=True, metavar="DIR",
                            help="Folder to create (must not exist or be empty).")
        parser.add_argument(
            "--arch", default="HTSAT-base",
            help="laion-clap audio model config: HTSAT-base (the paper's checkpoint, the "
                 "default), HTSAT-tiny (630k-*.pt), HTSAT-large, ..., or a laion model-config "
                 ".json path.",
        )
        parser.add_argument("--fusion", action="store_true",
                            help="The checkpoint is a fusion model (refused: not supported).")
        parser.add_argument(
            "--tokenizer", default="roberta-base",
            help="RoBERTa tokenizer to save with the model: hub id (from the local cache) or "
                 "folder (default roberta-base, laion-clap's).",
        )

    def handle(self, *args, checkpoint, out, arch, fusion, tokenizer, **options):
        from pipeline.backends.laion_convert import ConversionError, convert_laion_clap

        t0 = time.perf_counter()
        try:
            r = convert_laion_clap(checkpoint, out, arch=arch, fusion=fusion,
                                   tokenizer=tokenizer)
        except ConversionError as e:
            raise CommandError(f"{e}\nNothing was written.") from None
        self.stdout.write(
            f"{checkpoint} -> {out}: {arch}, {r.mapped} tensors mapped, "
            f"{len(r.dropped)} accounted for without a ClapModel counterpart "
            f"(see laion_conversion.json; {time.perf_counter() - t0:.1f} s)"
        )
