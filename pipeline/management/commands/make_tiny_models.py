import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Build the random-weight miniatures of the paper's architectures (Qwen2-Audio, "
        "Mistral, CLAP) with tokenizers trained on the spot, saved for the `tiny` profile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Rebuild even if present.")

    def handle(self, *args, force=False, **options):
        from pipeline.testing.tiny_models import build_tiny_models, ensure_tiny_models

        out = settings.MODEL_DIR / "tiny"
        t0 = time.perf_counter()
        paths = build_tiny_models(out) if force else ensure_tiny_models(out)
        for name, path in paths.items():
            self.stdout.write(f"  {name}: {path}")
        self.stdout.write(f"tiny models ready in {out} ({time.perf_counter() - t0:.1f} s)")
