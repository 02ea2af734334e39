"""Issue 16 in a real browser: a locked-out user reads what helps; an admin finds the
lockout under "Lockouts" in the navigation and lifts it; the user changes their password
on the "Password" page. No CSP violation on these pages. Set RELABEL_SCREENSHOTS to a
folder to keep screenshots of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser_support import ConsoleWatch, launch, log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a-much-longer-Passphrase-42"


def _shot(page, name: str) -> None:
    folder = os.environ.get("RELABEL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_lockout_page_lockouts_page_and_password_change(live_server, settings, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    UserFactory(username="rita", password="pw-secret-1")
    UserFactory(username="boss", role="admin", password="pw-secret-1")
    base = live_server.url
    watch = ConsoleWatch()
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            watch.attach(page)
            for i in range(settings.AXES_FAILURE_LIMIT):
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", "rita")
                page.fill("#id_password", f"guess-{i}")
                with page.expect_navigation():
                    page.keyboard.press("Enter")
            expect(page.locator("h1")).to_have_text("Logging in is blocked for now")
            expect(page.locator("main")).to_contain_text("log in from another network")
            _shot(page, "lockout")

            admin = browser.new_page()
            watch.attach(admin)
            log_in(admin, base, "boss", "pw-secret-1")
            admin.get_by_role("link", name="Lockouts").click()
            expect(admin.locator("h1")).to_have_text("Login lockouts")
            row = admin.locator("tr", has_text="rita")
            expect(row).to_contain_text("127.0.0.1")
            _shot(admin, "lockouts")
            admin.get_by_role("button", name="Lift lockout of rita from 127.0.0.1").click()
            expect(admin.locator(".messages")).to_contain_text("Lockout lifted: rita from 127.0.0.1")
            expect(admin.locator("main")).to_contain_text("No lockouts in force")

            log_in(page, base, "rita", "pw-secret-1")
            page.get_by_role("link", name="Password").click()
            expect(page.locator("h1")).to_have_text("Change your password")
            _shot(page, "password_change")
            page.fill("#id_old_password", "pw-secret-1")
            page.fill("#id_new_password1", NEW_PASSWORD)
            page.fill("#id_new_password2", NEW_PASSWORD)
            page.get_by_role("button", name="Change password").click()
            expect(page.locator("h1")).to_have_text("Password changed")
        finally:
            browser.close()
    watch.assert_no_csp_violations()
