"""The threshold panel in a real browser (Debian's Chromium through Playwright): the audit
page loads it by htmx, "Fit thresholds" fits a set and the table replaces the panel in
place. Saves a screenshot to test-artifacts/thresholds_panel.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.curation.threshold_fixtures import build_synthetic
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_fit_thresholds_from_the_audit_page(transactional_db, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from pipeline.models import ThresholdSet

    ds, run, clips, _ = build_synthetic()
    UserFactory(username="tb-cora", role="curator", password="s3cret-pass")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.set_default_timeout(15_000)
        log_in(page, live_server.url, "tb-cora", "s3cret-pass")
        page.goto(f"{live_server.url}/curation/dataset/{ds.name}/audit/?run={run.pk}")
        panel = page.locator("#thresholds")
        expect(panel).to_contain_text("No threshold set for this run's CLAP model yet")
        panel.get_by_label("Decisions a class needs").fill("10")
        panel.get_by_role("button", name="Fit thresholds").click()
        expect(panel).to_contain_text("Threshold set thr v1 fitted.")
        expect(panel.locator("table.thr-eval tbody tr")).to_have_count(2)
        expect(panel.get_by_role("row", name="Speech /m/09x0r 19 10 0.5000 1.000")).to_be_visible()
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(ARTIFACTS / "thresholds_panel.png"))
        browser.close()
    assert ThresholdSet.objects.get().min_decisions == 10
    assert not console_errors, console_errors
