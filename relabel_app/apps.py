from django.apps import AppConfig


class RelabelAppConfig(AppConfig):
    name = "relabel_app"
    verbose_name = "AudioSet data"

    def ready(self) -> None:
        # Connects the signals that drop the in-process ontology cache on label edits.
        from . import label_info  # noqa: F401
