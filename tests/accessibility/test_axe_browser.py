"""Accessibility, measured: axe-core (vendored for tests under tests/vendor/axe/, injected
by the test, never served) runs in Chromium over the main pages; any serious or critical
violation fails the test, with the rule, the page and the offending nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser_support import launch, log_in
from tests.factories import UserFactory, add_result, label, make_dataset, make_run

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture
def site(transactional_db, tmp_path):
    from pipeline.models import OriginalLabelScore
    from relabel_app.models import ClipLabel
    from review.models import Decision

    audio_root = tmp_path / "audio"
    audio_root.mkdir()
    ds, clips = make_dataset("a11y", audio_root, n_clips=3, review_priority="order")
    run = make_run(ds, threshold=0.25)
    for c in clips:
        ClipLabel.objects.create(clip=c, label=label("dog"))
        add_result(run, c, candidates=[("bark", 0.41, "exact", "dog barking"),
                                       ("speech", 0.27, "fuzzy", "man talking"),
                                       ("siren", 0.12, "synonym", "a siren")])
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("dog"), clap_score=0.08)
    ann = UserFactory(username="ann")
    ben = UserFactory(username="ben")
    for c in clips:
        Decision.objects.create(clip=c, label=label("dog"), reviewer=ann, verdict="accept")
        Decision.objects.create(clip=c, label=label("dog"), reviewer=ben, verdict="reject",
                                note="no dog")
    UserFactory(username="cura", password="s3cret-pass", role="curator")
    return {"dataset": ds, "clips": clips}


def _axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\\n')[1])}));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]


def test_main_pages_have_no_serious_violations(site, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ds, clips = site["dataset"], site["clips"]
    pages = {
        "clip": f"/clips/{clips[0].pk}/",
        "rapid": f"/rapid/clips/{clips[0].pk}/",
        "home": "/",
        "tokens": "/accounts/tokens/",
        "curation": "/curation/",
        "adjudication queue": f"/curation/dataset/{ds.name}/adjudicate/",
        "adjudication clip": f"/curation/clip/{clips[0].pk}/",
        "audit": f"/curation/dataset/{ds.name}/audit/",
        "exports": f"/curation/dataset/{ds.name}/exports/",
        "runs": "/runs/",
        "reviewers": f"/curation/dataset/{ds.name}/reviewers/",
    }
    found: dict[str, list[dict]] = {}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        # bypass_csp: the test injects axe as a script tag, which the app's CSP refuses (it
        # is the only script not served by the app; tests/security checks the CSP).
        page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        page.set_default_timeout(15_000)
        page.goto(live_server.url + "/accounts/login/")
        found["login"] = _axe(page)
        log_in(page, live_server.url, "cura", "s3cret-pass")
        for name, path in pages.items():
            response = page.goto(live_server.url + path)
            assert response.status == 200, (name, response.status)
            page.wait_for_load_state("networkidle")
            if name in ("clip", "rapid", "adjudication clip"):
                page.wait_for_selector("[data-player][data-ready='1']")
            found[name] = _axe(page)
            # The screens that had none get an <h1> too (a page's name for screen readers).
            if name in ("clip", "rapid"):
                assert page.locator("h1").count() == 1, name
        browser.close()
    bad = {name: v for name, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)
    assert len(found) == 12
