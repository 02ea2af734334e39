"""Adjudications, exports and audit figures through the API (curation's services)."""

from __future__ import annotations

import json

import pytest

from curation.export_jobs import export_job_run
from curation.models import Adjudication, AdjudicationLog, ExportJob
from pipeline.external_import import labelset_import

from .conftest import client_for

pytestmark = pytest.mark.django_db


def test_adjudication_twice_is_one_row_and_clear(world):
    cora = world["users"]["curator"]
    clip = world["clips"][0]
    c = client_for(cora)
    body = {"clip": clip.pk, "mid": "/m/09x0r", "verdict": "reject", "note": "no voice"}
    first = c.post("/api/adjudications/", body, format="json")
    second = c.post("/api/adjudications/", body, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert Adjudication.objects.filter(clip=clip).count() == 1
    assert AdjudicationLog.objects.filter(clip=clip).count() == 1
    row = second.json()
    assert (row["verdict"], row["note"], row["curator"], row["label"]["mid"]) == (
        "reject", "no voice", "cora", "/m/09x0r"
    )
    listed = c.get(f"/api/adjudications/?clip={clip.pk}").json()["results"]
    assert [r["id"] for r in listed] == [row["id"]]
    assert c.get(f"/api/adjudications/?dataset={world['dataset'].pk}&verdict=accept").json()[
        "results"] == []
    assert c.delete(f"/api/adjudications/{row['id']}/").status_code == 204
    assert not Adjudication.objects.filter(clip=clip).exists()
    assert c.delete(f"/api/adjudications/{row['id']}/").status_code == 404


MALFORMED_ADJUDICATIONS = [
    [], {}, {"clip": "x", "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": 10**30, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": 987654321, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/nope", "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "unsure"},  # curators decide
    {"clip": "{clip}", "mid": "/m/09x0r"},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "note": None},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "note": "a\x00"},
]
MALFORMED_EXPORTS = [
    [], {}, {"dataset": "{dataset}"}, {"dataset": "{dataset}", "format": "xml"},
    {"dataset": "{dataset}", "format": "csv", "policy": "lenient"},
    {"dataset": 10**30, "format": "csv"}, {"dataset": 987654321, "format": "csv"},
    {"dataset": ["{dataset}"], "format": "csv"}, {"dataset": "{dataset}", "format": None},
]


@pytest.mark.parametrize(("path", "bodies"), [
    ("/api/adjudications/", MALFORMED_ADJUDICATIONS),
    ("/api/exports/", MALFORMED_EXPORTS),
])
def test_malformed_curation_bodies_are_400(world, path, bodies):
    c = client_for(world["users"]["curator"])
    ids = {"{clip}": world["clips"][0].pk, "{dataset}": world["dataset"].pk}
    failures = []
    for body in bodies:
        if isinstance(body, dict):
            body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        resp = c.post(path, json.dumps(body), content_type="application/json")
        if resp.status_code != 400:
            failures.append(f"{body!r}: {resp.status_code} {resp.content[:200]!r}")
    resp = c.post(path, "{oops", content_type="application/json")
    if resp.status_code != 400:
        failures.append(f"not JSON: {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert not Adjudication.objects.exists() and not ExportJob.objects.exists()


def test_export_job_then_download(world, django_capture_on_commit_callbacks, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    cora = world["users"]["curator"]
    c = client_for(cora)
    with django_capture_on_commit_callbacks() as queued:
        resp = c.post("/api/exports/", {"dataset": world["dataset"].pk, "format": "csv",
                                        "policy": "keep-original"}, format="json")
    assert resp.status_code == 202, resp.content
    job = resp.json()
    assert (job["status"], job["format"], job["policy"], job["created_by"]) == (
        "pending", "csv", "keep-original", "cora"
    )
    assert job["download_url"] is None and len(queued) == 1
    assert c.get(f"/api/exports/{job['id']}/download/").status_code == 404

    export_job_run(job_id=job["id"])  # what the Celery task does
    done = c.get(f"/api/exports/{job['id']}/").json()
    assert done["status"] == "done", done
    resp = c.get(done["download_url"])
    assert resp.status_code == 200
    assert "attachment" in resp["Content-Disposition"]
    text = b"".join(resp.streaming_content).decode()
    assert text.startswith("#") and "yt000000000" in text
    listed = c.get(f"/api/exports/?dataset={world['dataset'].pk}").json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]

    # Reviewers can neither start nor download exports.
    rita = client_for(world["users"]["reviewer"])
    assert rita.get(done["download_url"]).status_code == 403
    assert rita.post("/api/exports/", {"dataset": world["dataset"].pk, "format": "json"},
                     format="json").status_code == 403


def test_download_refuses_paths_outside_the_export_folder(world, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_DIR.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    job = ExportJob.objects.create(dataset=world["dataset"], status="done",
                                   path="../secret.txt")
    c = client_for(world["users"]["curator"])
    assert c.get(f"/api/exports/{job.pk}/download/").status_code == 404


def test_audit_figures(world):
    c = client_for(world["users"]["curator"])
    ds = world["dataset"]
    resp = c.get(f"/api/datasets/{ds.pk}/audit/")
    assert resp.status_code == 200, resp.content
    figures = resp.json()
    assert figures["dataset"] == "apids" and figures["clips"] == 3
    assert figures["run"]["id"] == world["run"].pk
    assert c.get(f"/api/datasets/{ds.pk}/audit/?run=987654321").status_code == 400
    assert c.get(f"/api/datasets/{ds.pk}/audit/?run=x").status_code == 400
    assert c.get("/api/datasets/987654321/audit/").status_code == 404


def test_external_label_set_audited_through_the_api(world, tmp_path):
    """import_labelset + audit: the agreement of a published set with the original labels,
    worked out by hand. Originals: clip 0 Dog + Speech, clip 1 Siren. The set: clip 0
    Speech + Bark, clip 1 Siren + Music, plus a clip that is not in the dataset."""
    path = tmp_path / "published.json"
    path.write_text(json.dumps({"data": [
        {"wav": "audio/Yyt000000000.wav", "labels": "/m/09x0r,/m/05tny_"},
        {"wav": "audio/Yyt000000001.wav", "labels": "/m/03kmc9,/m/04rlf"},
        {"wav": "audio/Yzz000000009.wav", "labels": "/m/09x0r"},
    ]}))
    r = labelset_import(path=path, dataset_name="apids", name="published")
    assert (r.clips_matched, r.unmatched_items) == (2, 1)
    c = client_for(world["users"]["curator"])
    runs = c.get("/api/runs/?kind=external").json()["results"]
    assert [(x["id"], x["profile_name"], x["status"]) for x in runs] == [
        (r.run_id, "published", "done")
    ]
    progress = c.get(f"/api/runs/{r.run_id}/progress/").json()
    assert (progress["total"], progress["percent"]) == (2, 100.0)
    cands = c.get(f"/api/candidates/?run={r.run_id}").json()["results"]
    assert sorted(x["label"]["mid"] for x in cands) == sorted(
        ["/m/09x0r", "/m/05tny_", "/m/03kmc9", "/m/04rlf"])
    assert {(x["tier"], x["kept"], x["clap_score"]) for x in cands} == {("external", True, None)}

    figures = c.get(f"/api/datasets/{world['dataset'].pk}/audit/?run={r.run_id}").json()
    agreement = figures["agreement"]
    # Covered clips 0 and 1: originals {Dog, Speech, Siren}, the set {Speech, Bark, Siren,
    # Music}, both {Speech, Siren}.
    assert (agreement["clips"], agreement["original_labels"], agreement["run_labels"],
            agreement["both"]) == (2, 3, 4, 2)
    assert agreement["original_kept_fraction"] == pytest.approx(2 / 3)
    assert agreement["run_original_fraction"] == pytest.approx(2 / 4)
    run_counts = figures["label_counts"]["run"]
    assert (run_counts["clips"], run_counts["labels"], run_counts["average"]) == (2, 4, 2.0)
