"""Issue 12, break 2: dataset names reach URLs and file names. The attacks: an import with
``--dataset '../../../probe/outside/p'`` (which used to make a curator's export write
outside the export folder), and a name like ``<img> ds/../x`` (which made /curation/ answer
500 for every dataset). One rule (relabel_app.names) in the model, the database, the
commands; export files named from ids and checked to land inside the export folder."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from curation.export_jobs import export_job_run
from curation.models import ExportJob
from relabel_app.models import Clip, Dataset
from relabel_app.names import dataset_name_problem
from tests.factories import ClipFactory, DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db

TRAVERSAL = "../../../probe/outside/p"
HOSTILE_NAMES = [TRAVERSAL, "<img> ds/../x", "a/b", "a b", ".hidden", "-rf", "x.csv", "",
                 "ds\x00", "d\u00e9j\u00e0", "a" * 101, "..", "C:\\x", "=HYPERLINK(1)"]
SEGMENTS = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=1, num_segs=1, num_positive_labels=1, num_unique_labels=1\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    'abcdefghijk, 0.000, 10.000, "/m/09x0r"\n'
)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_rule_refuses_hostile_names(name):
    assert dataset_name_problem(name) is not None
    with pytest.raises(ValidationError):
        Dataset(name=name).full_clean()


@pytest.mark.parametrize("name", ["balanced_train", "eval", "demo", "dataset-12", "A1"])
def test_rule_accepts_slugs(name):
    assert dataset_name_problem(name) is None
    Dataset(name=name).full_clean()


@pytest.mark.parametrize("name", [TRAVERSAL, "<img> ds/../x", "-lead"])
def test_database_refuses_a_bad_name_even_without_validation(name):
    with pytest.raises(IntegrityError), transaction.atomic():
        Dataset.objects.create(name=name)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"INSERT INTO {Dataset._meta.db_table} (name, description, audio_root, "
                    "synthetic, review_priority, required_reviews, created_at) "
                    "VALUES (%s, '', '', false, 'order', 1, now())", [name])


def test_import_segments_with_a_traversal_name_is_refused(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path / "exports"
    csv = tmp_path / "x.csv"
    csv.write_text(SEGMENTS)
    before = Dataset.objects.count()
    with pytest.raises(CommandError, match="not a valid dataset name"):
        call_command("import_segments", str(csv), "--dataset", TRAVERSAL)
    assert Dataset.objects.count() == before and not Clip.objects.filter(ytid="abcdefghijk")


@pytest.mark.parametrize("command", ["import_labels_json", "import_labelset"])
def test_other_import_commands_refuse_bad_names(tmp_path, command):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"data": [{"wav": "Yabcdefghijk_0.000.wav",
                                          "labels": "/m/09x0r"}]}))
    args = [str(path), "--dataset", "<img> ds/../x"]
    if command == "import_labelset":
        args += ["--name", "published"]
    before = Dataset.objects.count()
    with pytest.raises(CommandError, match="not a valid dataset name"):
        call_command(command, *args)
    assert Dataset.objects.count() == before


def test_make_demo_clips_refuses_a_name_that_would_be_a_path(tmp_path, settings):
    settings.AUDIO_ROOT = tmp_path / "audio"
    with pytest.raises(CommandError, match="not a valid dataset name"):
        call_command("make_demo_clips", "--dataset", "../../escape")
    assert not (tmp_path / "escape").exists() and not settings.AUDIO_ROOT.exists()


def test_segments_import_service_refuses_too(tmp_path):
    import io

    from relabel_app.segment_import import SegmentImportError, segments_import

    with pytest.raises(SegmentImportError, match="not a valid dataset name"):
        segments_import(source=io.BytesIO(SEGMENTS.encode()), source_name="x.csv",
                        dataset_name=TRAVERSAL)


def test_curation_page_answers_200_with_datasets(client):
    DatasetFactory(name="ok_one")
    DatasetFactory(name="ok-two")
    client.force_login(UserFactory(role="curator"))
    r = client.get("/curation/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "/curation/dataset/ok_one/" in body and "/curation/dataset/ok-two/" in body


def test_export_files_are_named_from_ids_inside_the_export_folder(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path / "exports"
    ds = DatasetFactory(name="named")
    ClipFactory(dataset=ds)
    job = ExportJob.objects.create(dataset=ds, format="decisions")
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.path == f"dataset-{ds.pk}/export-{job.pk}-decisions.csv"
    assert (settings.EXPORT_DIR / job.path).is_file()
    assert job.file_name == f"named-decisions-{job.pk}.csv"


def test_an_export_path_outside_the_folder_is_refused_before_writing(tmp_path, settings,
                                                                      monkeypatch):
    """Even if a path were ever built from something else, nothing is written outside."""
    from curation import export_jobs

    settings.EXPORT_DIR = tmp_path / "exports"
    ds = DatasetFactory(name="escaping")
    ClipFactory(dataset=ds)
    monkeypatch.setattr(export_jobs, "export_job_relative_path",
                        lambda job: "../../probe/outside/p-decisions.csv")
    job = ExportJob.objects.create(dataset=ds, format="decisions")
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "outside the export folder" in job.error
    assert not (tmp_path / "probe").exists() and not (tmp_path.parent / "probe").exists()


def test_exports_symlinked_out_of_the_folder_are_refused(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_DIR.mkdir()
    ds = DatasetFactory(name="linked")
    ClipFactory(dataset=ds)
    (tmp_path / "elsewhere").mkdir()
    (settings.EXPORT_DIR / f"dataset-{ds.pk}").symlink_to(tmp_path / "elsewhere")
    job = ExportJob.objects.create(dataset=ds, format="decisions")
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "outside the export folder" in job.error
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_data_migration_renames_existing_bad_names(capsys):
    """The migration's step on a table that still holds bad names (constraint dropped in
    this test's transaction): each is reported and renamed, the constraint then holds."""
    import importlib

    mig = importlib.import_module("relabel_app.migrations.0004_dataset_name_rule")
    DatasetFactory(name="img-ds-x")  # the first choice is taken: a suffix is added
    table = Dataset._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT dataset_name_slug")
        for bad in ("<img> ds/../x", TRAVERSAL, "-lead"):
            cur.execute(f"INSERT INTO {table} (name, description, audio_root, synthetic, "
                        "review_priority, required_reviews, created_at) "
                        "VALUES (%s, '', '', false, 'order', 1, now())", [bad])
    mig.fix_dataset_names(apps, None)
    out = capsys.readouterr().out
    assert "renamed to 'img-ds-x-2'" in out and "renamed to 'probe-outside-p'" in out
    assert "renamed to 'lead'" in out
    names = set(Dataset.objects.values_list("name", flat=True))
    assert {"img-ds-x", "img-ds-x-2", "probe-outside-p", "lead"} <= names
    assert all(dataset_name_problem(n) is None for n in names)
    with connection.cursor() as cur:  # the constraint can be added back: every name passes
        cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT dataset_name_slug "
                    r"CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$')")
