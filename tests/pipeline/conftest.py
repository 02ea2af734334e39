import pytest


@pytest.fixture(scope="session")
def tiny_models(django_db_setup):
    """The tiny random-weight models, built once into settings.MODEL_DIR/tiny."""
    from django.conf import settings

    from pipeline.tiny_models import ensure_tiny_models

    return ensure_tiny_models(settings.MODEL_DIR / "tiny")
