import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """The three random-weight miniatures, built once per test session."""
    from pipeline.testing.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(autouse=True)
def _ontology_after_flush():
    """These tests touch no database: shadow the root conftest's autouse ontology fixture
    (it needs pytest-django's django_db_blocker), so they also run with `-p no:django`."""
    yield
