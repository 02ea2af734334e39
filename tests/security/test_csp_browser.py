"""Content-Security-Policy (issue 12, break 7: no page sent one): every main page, opened in
a real browser as a curator, carries the policy and logs no CSP violation: no inline script
or style is left that it would block, htmx injects no <style>, the API docs load their
start-up script from a URL."""

from __future__ import annotations

import pytest

from tests.browser_support import ConsoleWatch, csp_directives, launch

from .conftest import PASSWORD

pytestmark = pytest.mark.browser


def main_pages(world) -> list[tuple[str, str]]:
    """(path, a text the page must show once it has worked)."""
    ds, clip, run = world.dataset, world.clips[0], world.run
    return [
        ("/", "secds"),
        (f"/clips/{clip.pk}/", "Accept"),
        (f"/clips/{clip.pk}/decisions/", "rita"),
        ("/curation/", "secds"),
        (f"/curation/clip/{clip.pk}/", "Dog"),
        (f"/curation/dataset/{ds.name}/audit/", "Audit"),
        (f"/curation/dataset/{ds.name}/exports/", "Export"),
        ("/runs/", "Pipeline runs"),
        (f"/runs/{run.pk}/", "Progress"),
        ("/accounts/tokens/", "API tokens"),
        ("/api/docs/", "AudioSet relabeling studio API"),
    ]


def test_every_main_page_has_a_csp_and_no_violations(world, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    pages = main_pages(world)
    console = ConsoleWatch()
    headers: dict[str, str] = {}
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console.attach(page)
        page.set_default_timeout(10_000)

        resp = page.goto(live_server.url + "/accounts/login/")
        headers["/accounts/login/"] = resp.headers.get("content-security-policy", "")
        page.fill("#id_username", "cora")
        page.fill("#id_password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(live_server.url + "/")

        for path, text in pages:
            resp = page.goto(live_server.url + path)
            assert resp.status == 200, (path, resp.status)
            headers[path] = resp.headers.get("content-security-policy", "")
            expect(page.get_by_text(text).first).to_be_visible()
            page.wait_for_load_state("networkidle")
        # Swagger UI rendered the operations from the schema (its script ran).
        expect(page.locator(".opblock").first).to_be_visible()

        # The admin site, as the superuser (where audio roots are set).
        admin = browser.new_context().new_page()
        console.attach(admin)
        admin.goto(live_server.url + "/admin/login/")
        admin.fill("#id_username", "sam")
        admin.fill("#id_password", PASSWORD)
        admin.keyboard.press("Enter")
        admin.wait_for_url(live_server.url + "/admin/")
        for path in ("/admin/", f"/admin/relabel_app/dataset/{world.dataset.pk}/change/"):
            resp = admin.goto(live_server.url + path)
            assert resp.status == 200, (path, resp.status)
            headers[path] = resp.headers.get("content-security-policy", "")
            admin.wait_for_load_state("networkidle")
        browser.close()
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")

    for path, header in headers.items():
        csp = csp_directives(header)
        assert csp["script-src"] == ["'self'"], (path, header)
        style = csp["style-src"]
        # Our pages carry the nonce (meta csp-nonce); the API docs and admin need none.
        if path.startswith(("/api/docs/", "/admin/")):
            assert style == ["'self'"], (path, header)
        else:
            assert style[0] == "'self'" and style[1].startswith("'nonce-"), (path, header)
            assert len(style) == 2, (path, header)
    console.assert_no_csp_violations()
    # The admin asks for a /favicon.ico the app does not have; nothing else may fail.
    assert not [e for e in console.errors if not e.endswith("/favicon.ico]")], console.errors


def test_an_inline_script_would_be_reported(world, live_server, monkeypatch):
    """The watcher can fail: a page with an inline <script> under the policy is caught."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    console = ConsoleWatch()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page()
        console.attach(page)
        page.route("**/inline-test", lambda route: route.fulfill(
            status=200, content_type="text/html",
            headers={"Content-Security-Policy": "script-src 'self'; style-src 'self'"},
            body="<html><head><style>p{color:red}</style></head>"
                 "<body><p>x</p><script>document.title='ran'</script></body></html>",
        ))
        page.goto(live_server.url + "/inline-test")
        page.wait_for_timeout(200)
        assert page.title() != "ran"
        browser.close()
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")
    assert len(console.csp_violations()) >= 2
