from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (  # noqa: F401
            schema_extensions,  # the token scheme in the OpenAPI schema
            signals,  # token revocation on logout
        )
