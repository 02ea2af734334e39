import os

import pytest
from django.test import Client
from django.urls import reverse

from relabel_app.models import Clip
from review.audio_serving import RangeNotSatisfiable, parse_range
from tests.factories import make_dataset, write_sine_wav

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(audio_root, reviewer):
    ds, clips = make_dataset("aud", audio_root, n_clips=1)
    c = Client()
    c.force_login(reviewer)
    path = audio_root / clips[0].audio_path
    return {"client": c, "clip": clips[0], "data": path.read_bytes(), "dataset": ds,
            "url": reverse("review:clip_audio", kwargs={"clip_id": clips[0].pk})}


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_whole_file(served):
    r = served["client"].get(served["url"])
    assert r.status_code == 200
    assert r["Accept-Ranges"] == "bytes" and r["Content-Type"] == "audio/wav"
    assert int(r["Content-Length"]) == len(served["data"])
    assert body(r) == served["data"]


@pytest.mark.parametrize("header,first,last", [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),
    ("bytes=-50", None, None),
    ("bytes=10-10", 10, 10),
    ("bytes=30000-99999999", 30000, None),
])
def test_range_requests(served, header, first, last):
    data = served["data"]
    size = len(data)
    r = served["client"].get(served["url"], HTTP_RANGE=header)
    assert r.status_code == 206
    if header == "bytes=-50":
        first, last = size - 50, size - 1
    last = size - 1 if last is None else last
    assert r["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(r["Content-Length"]) == last - first + 1
    assert body(r) == data[first:last + 1]


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=abc", "bytes=5-2", "bytes=-0", "bytes=-"])
def test_unsatisfiable_ranges_are_416(served, header):
    r = served["client"].get(served["url"], HTTP_RANGE=header)
    assert r.status_code == 416
    assert r["Content-Range"] == f"bytes */{len(served['data'])}"


def test_other_units_and_multiple_ranges_get_the_whole_file(served):
    for header in ("items=0-1", "bytes=0-1,5-6"):
        r = served["client"].get(served["url"], HTTP_RANGE=header)
        assert r.status_code == 200 and body(r) == served["data"]


def test_if_range_mismatch_sends_whole_file(served):
    r = served["client"].get(served["url"], HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"stale"')
    assert r.status_code == 200
    etag = r["ETag"]
    r = served["client"].get(served["url"], HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert r.status_code == 206


def test_parse_range_unit():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-", 10) == (0, 9)
    assert parse_range("bytes=-20", 10) == (0, 9)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=10-", 10)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


# --- path traversal ---------------------------------------------------------------------


@pytest.fixture
def secret(tmp_path):
    return write_sine_wav(tmp_path / "secret" / "secret.wav", freq=1000)


def _set_path(clip, value):
    Clip.objects.filter(pk=clip.pk).update(audio_path=value)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "encoded", "backslash"])
def test_paths_outside_the_audio_root_are_refused(served, secret, audio_root, kind):
    clip = served["clip"]
    if kind == "dotdot":
        _set_path(clip, "../secret/secret.wav")
    elif kind == "absolute":
        _set_path(clip, str(secret))
    elif kind == "symlink":
        os.symlink(secret, audio_root / "link.wav")
        _set_path(clip, "link.wav")
    elif kind == "encoded":
        # Stored percent-encoded: never decoded, so it names no file.
        _set_path(clip, "%2e%2e/secret/secret.wav")
    elif kind == "backslash":
        _set_path(clip, "..\\secret\\secret.wav")
    r = served["client"].get(served["url"])
    assert r.status_code == 404
    assert secret.read_bytes() not in body(r)
    # The page falls back to the YouTube player instead of offering the file.
    page = served["client"].get(reverse("review:clip", kwargs={"clip_id": clip.pk})).content
    assert b"youtube-nocookie.com" in page and b"<audio" not in page


def test_url_encoded_traversal_in_the_url_does_not_route(served):
    c = served["client"]
    base = served["url"]
    for tail in ("..%2f..%2fsecret%2fsecret.wav", "%2e%2e/%2e%2e/etc/passwd"):
        assert c.get(base + tail).status_code == 404


def test_symlink_inside_the_root_is_served(served, audio_root):
    clip = served["clip"]
    (audio_root / "sub").mkdir()
    os.symlink(audio_root / clip.audio_path, audio_root / "sub" / "alias.wav")
    _set_path(clip, "sub/alias.wav")
    r = served["client"].get(served["url"], HTTP_RANGE="bytes=0-3")
    assert r.status_code == 206 and body(r) == b"RIFF"


def test_missing_file_is_404(served, audio_root):
    (audio_root / served["clip"].audio_path).unlink()
    assert served["client"].get(served["url"]).status_code == 404


def test_download_name_comes_from_the_clip_id_not_the_stored_path(served):
    """Issue 16: the served file's name was the stored file's (a server detail)."""
    clip = served["clip"]
    _set_path(clip, "secret-folder/internal-name-2026.wav")
    src = served["dataset"].resolved_audio_root() / "secret-folder" / "internal-name-2026.wav"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(served["data"])
    for extra in ({}, {"HTTP_RANGE": "bytes=0-99"}):
        r = served["client"].get(served["url"], **extra)
        assert r.status_code in (200, 206)
        assert r["Content-Disposition"] == f'inline; filename="clip-{clip.pk}.wav"'
        assert "internal-name" not in str(r.headers)
