import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test database holds the real AudioSet ontology (632 classes)."""
    from relabel_app.models import Label
    from relabel_app.ontology_loader import ontology_load

    with django_db_blocker.unblock():
        if Label.objects.count() != 632:
            ontology_load()
    yield


@pytest.fixture
def ontology(db):
    from relabel_app.ontology_source import load_ontology

    return load_ontology()
