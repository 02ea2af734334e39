from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Expert review"

    def ready(self) -> None:
        # Connects the signals that drop the in-process ontology cache on label edits.
        from . import label_info  # noqa: F401
