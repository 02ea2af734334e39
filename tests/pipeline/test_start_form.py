"""The start-run form (issue 21): it remembers the profile of the curator's last run, and
after an error (a profile whose settings are missing) it keeps the chosen dataset and
profile and says why, rather than a redirect that forgets them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from pipeline.models import PipelineRun
from relabel_app.models import Dataset
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _selected(html: str, name: str) -> str | None:
    select = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    m = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return m.group(1) if m else None


def test_form_remembers_the_last_profile_and_keeps_the_dataset_after_an_error(
        client, monkeypatch):
    for var in ("AUDIO_LLM_BASE_URL", "TEXT_LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    a, b = Dataset.objects.create(name="aaa-ds"), Dataset.objects.create(name="zzz-ds")
    cora = UserFactory(username="sf-cora", role="curator")
    client.force_login(cora)
    # No run yet: nothing remembered.
    html = client.get(reverse("pipeline:run_list")).content.decode()
    assert _selected(html, "profile") is None
    # The api profile needs its base URLs: refused, the form keeps zzz-ds and api.
    r = client.post(reverse("pipeline:run_start"), {"dataset": b.pk, "profile": "api"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "AUDIO_LLM_BASE_URL" in html
    assert _selected(html, "dataset") == str(b.pk) and _selected(html, "profile") == "api"
    assert not PipelineRun.objects.exists()
    # A run started with paper (by this curator) is what the form offers next time.
    PipelineRun.objects.create(dataset=a, profile_name="paper", created_by=cora,
                               config={"name": "paper"})
    PipelineRun.objects.create(dataset=b, profile_name="tiny",
                               created_by=UserFactory(username="sf-other", role="curator"),
                               config={"name": "tiny"})
    html = client.get(reverse("pipeline:run_list")).content.decode()
    assert _selected(html, "profile") == "paper" and _selected(html, "dataset") == str(a.pk)
