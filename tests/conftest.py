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


def _ensure_review_reference_data() -> None:
    """What the review migrations seed (error categories, role groups). The in-process
    ontology cache may also hold the ids of labels a flush removed."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    from relabel_app import label_info
    from relabel_app.models import Label
    from relabel_app.roles import ROLE_GROUPS, ensure_role_groups
    from review.models import ErrorCategory

    if not ErrorCategory.objects.exists():
        importlib.import_module("review.migrations.0002_seed_error_categories").seed(apps, None)
    if Group.objects.filter(name__in=ROLE_GROUPS).count() != len(ROLE_GROUPS):
        ensure_role_groups()
    cached = label_info._cache
    if cached is not None and not Label.objects.filter(pk=next(iter(cached.by_id))).exists():
        label_info.ontology_clear()


@pytest.fixture(autouse=True)
def _reference_data_after_flush(request, django_db_blocker):
    """Transactional tests (live server, real workers) end with a flush of every table;
    put back what migrations seed (the ontology, role groups, error categories) before the
    next database test, outside its transaction."""
    uses_db = request.node.get_closest_marker("django_db") or any(
        f in request.fixturenames for f in ("db", "transactional_db", "live_server")
    )
    if uses_db:
        request.getfixturevalue("django_db_setup")
        with django_db_blocker.unblock():
            _ensure_ontology()
            _ensure_review_reference_data()
    yield


@pytest.fixture
def ontology(db):
    from relabel_app.ontology_source import load_ontology

    return load_ontology()
