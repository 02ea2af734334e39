import os

import pytest

# Worker, demo-dataset and tiny-model fixtures for every test folder.
pytest_plugins = ["tests.pipeline.worker_fixtures"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _ensure_ontology() -> None:
    from relabel_app.models import Label
    from relabel_app.ontology_loader import ontology_load

    if Label.objects.count() != 632:
        ontology_load()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test database holds the real AudioSet ontology (632 classes)."""
    with django_db_blocker.unblock():
        _ensure_ontology()
    yield


@pytest.fixture(autouse=True)
def _ontology_after_flush(request, django_db_blocker):
    """Transactional tests (live server, real workers) end with a flush of every table;
    put the ontology back before the next database test, outside its transaction."""
    uses_db = request.node.get_closest_marker("django_db") or any(
        f in request.fixturenames for f in ("db", "transactional_db", "live_server")
    )
    if uses_db:
        request.getfixturevalue("django_db_setup")
        with django_db_blocker.unblock():
            _ensure_ontology()
    yield


@pytest.fixture
def ontology(db):
    from relabel_app.ontology_source import load_ontology

    return load_ontology()
