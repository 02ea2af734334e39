"""Headers (issue 12): the proxy's HTTPS header is believed only when a setting says a
trusted proxy is in front (it was trusted from any client), and every response carries a
Content-Security-Policy (no page sent one)."""

from __future__ import annotations

import pytest

from tests.browser_support import csp_directives
from tests.factories import UserFactory
from tests.relabel_app.test_settings import run_manage

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "relabel_app.settings.production",
    "DJANGO_SECRET_KEY": "x9$k2!" + "q7Lm3Zp0vR8sT1wY4uB6nC5dE2fG9hJ0kA" * 2,
    "DJANGO_ALLOWED_HOSTS": "relabel.example.org",
    "DATABASE_URL": "postgres://u:p@db.example.org:5432/relabel",
    "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
}
SHOW = "from django.conf import settings as s; print(repr(getattr(s, 'SECURE_PROXY_SSL_HEADER', None)))"


def test_production_trusts_x_forwarded_proto_only_with_a_trusted_proxy():
    r = run_manage("shell", "--no-imports", "-c", SHOW, env_extra=PRODUCTION,
                   drop=("RELABEL_TRUSTED_PROXY",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"
    r = run_manage("shell", "--no-imports", "-c", SHOW,
                   env_extra={**PRODUCTION, "RELABEL_TRUSTED_PROXY": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_check_deploy_is_clean_behind_a_trusted_proxy_too():
    r = run_manage("check", "--deploy", "--fail-level", "WARNING",
                   env_extra={**PRODUCTION, "RELABEL_TRUSTED_PROXY": "1"}, drop=())
    assert r.returncode == 0, r.stderr
    assert "System check identified no issues" in r.stdout


@pytest.mark.django_db
def test_a_client_claiming_https_over_http_is_not_believed(client, settings):
    """The attack: plain HTTP with `X-Forwarded-Proto: https`. With no trusted proxy the
    claim is ignored: the HTTPS redirect still happens and the request is not secure."""
    settings.SECURE_SSL_REDIRECT = True
    assert getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None
    resp = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert resp.status_code == 301 and resp["Location"].startswith("https://")
    # Behind a trusted proxy the same header is the proxy's word, and is believed.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


@pytest.mark.django_db
def test_every_response_carries_the_policy(client):
    user = UserFactory(role="curator")
    client.force_login(user)
    for path in ("/accounts/tokens/", "/", "/runs/", "/curation/", "/api/docs/", "/api/",
                 "/no-such-page/"):
        resp = client.get(path)
        csp = csp_directives(resp.get("Content-Security-Policy", ""))
        assert csp.get("script-src") == ["'self'"], (path, resp.status_code, csp)
        assert csp["style-src"][0] == "'self'" and "'unsafe-inline'" not in csp["style-src"]
        assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
        assert csp["default-src"] == ["'self'"]


@pytest.mark.django_db
def test_the_page_nonce_is_the_policys(client):
    client.force_login(UserFactory())
    resp = client.get("/")
    html = resp.content.decode()
    nonce = html.split('<meta name="csp-nonce" content="', 1)[1].split('"', 1)[0]
    assert len(nonce) >= 16
    csp = csp_directives(resp["Content-Security-Policy"])
    assert csp["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    # A fresh one per request.
    assert nonce not in client.get("/")["Content-Security-Policy"]


def test_no_template_has_inline_script_style_or_handlers():
    """The policy would block these; nothing of the kind is left in any template."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    bad = re.compile(
        r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>"
        r"|\sstyle=|<style|\shx-on|\son[a-z]+=",
        re.IGNORECASE,
    )
    comments = re.compile(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", re.DOTALL)
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in root.rglob("*.html")
             for m in bad.finditer(comments.sub("", p.read_text()))]
    assert len(list(root.rglob("*.html"))) > 20
    assert not found, found


@pytest.mark.django_db
def test_workers_only_from_our_origin_or_the_spectrogram_plugins_blob(client):
    """The review player's spectrogram runs in wavesurfer's Spectrogram plugin's Web Worker,
    which the plugin starts from a blob: URL of its own code: worker-src allows that and our
    origin, nothing else (scripts stay script-src 'self')."""
    client.force_login(UserFactory())
    csp = csp_directives(client.get("/")["Content-Security-Policy"])
    assert sorted(csp["worker-src"]) == ["'self'", "blob:"]
    assert csp["script-src"] == ["'self'"]
