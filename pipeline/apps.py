from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Model pipeline"

    def ready(self) -> None:
        # The stages' write code, and the extra stages named in settings
        # (PIPELINE_EXTRA_STAGES) with their status columns: the models know only the
        # declarations (pipeline.stage_declarations), so the chain loads after them.
        from . import chain  # noqa: F401
        from .models import add_stage_status_fields

        add_stage_status_fields()
