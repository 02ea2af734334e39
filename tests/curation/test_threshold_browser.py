"""The threshold panel in a real browser (Debian's Chromium through Playwright): the audit
page loads it by htmx, "Fit thresholds" queues a fit that a real Celery worker runs, the
panel shows it pending and replaces itself with the table when it is done (polling that
stops); then Refresh shows progress and the audit page updates itself when the snapshot is
ready. Saves a screenshot to test-artifacts/thresholds_panel.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.curation.threshold_fixtures import build_synthetic
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_fit_thresholds_from_the_audit_page(transactional_db, live_server, monkeypatch,
                                            worker):
    from playwright.sync_api import expect, sync_playwright

    from pipeline.models import ThresholdSet

    ds, run, clips, _ = build_synthetic()
    UserFactory(username="tb-cora", role="curator", password="s3cret-pass")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    proc = worker(queues=["export"])
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.set_default_timeout(15_000)
        log_in(page, live_server.url, "tb-cora", "s3cret-pass")
        page.goto(f"{live_server.url}/curation/dataset/{ds.name}/audit/?run={run.pk}")
        # The audit's first snapshot is computed by the worker; the page reloads itself
        # when it is ready (issue 21). Wait for that before using the panel.
        expect(page.locator("#snapshot-state")).to_contain_text("Computed at", timeout=90_000)
        panel = page.locator("#thresholds")
        expect(panel).to_contain_text("No threshold set for this run's CLAP model yet")
        panel.get_by_label("Decisions a class needs").fill("10")
        panel.get_by_role("button", name="Fit thresholds").click()
        # Pending first (the fit is not inside the request), then the set, without a reload.
        expect(panel.locator("#fit-progress")).to_be_visible()
        expect(panel.get_by_role("button", name="Fit thresholds")).to_be_disabled()
        expect(panel).to_contain_text("Threshold set thr v1 fitted.", timeout=90_000)
        assert proc.poll() is None, "the worker exited"
        expect(panel.locator("#fit-progress")).to_have_count(0)
        expect(panel.get_by_role("button", name="Fit thresholds")).to_be_enabled()
        expect(panel.locator("#refused-classes")).to_contain_text("0 accepted and 12 rejected")
        expect(panel.locator("table.thr-eval tbody tr")).to_have_count(2)
        expect(panel.get_by_role("row", name="Speech /m/09x0r 19 10 0.5000 1.000")).to_be_visible()
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(ARTIFACTS / "thresholds_panel.png"))
        # Refresh: the state line shows progress, then the page updates itself.
        first = page.locator("#snapshot-state time").get_attribute("datetime")
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#snapshot-progress")).to_be_visible()
        expect(page.locator("#snapshot-progress")).to_have_count(0, timeout=90_000)
        assert page.locator("#snapshot-state time").get_attribute("datetime") != first
        browser.close()
    assert ThresholdSet.objects.get().min_decisions == 10
    assert not console_errors, console_errors
