from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Sound search"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (rebuild the index when embeddings are added)
