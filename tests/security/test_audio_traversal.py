"""Path traversal against the audio view: the cases tests/review/test_audio.py does not
cover (that file has ``..``, absolute, a symlinked file, percent-encoded, backslashes and
an encoded ``..`` in the URL). Here: double-encoded forms, NUL bytes, a symlinked folder
leading out of the root, Windows drive and UNC paths, ``..`` after a real folder, and
the curation page's player."""

from __future__ import annotations

import os

import pytest
from django.db import DataError, transaction
from django.test import Client
from django.urls import reverse

from relabel_app.models import Clip
from review.audio_serving import AudioPathRefused, clip_audio_file
from tests.factories import write_sine_wav

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(tmp_path):
    return write_sine_wav(tmp_path / "secret" / "secret.wav", freq=1000)


@pytest.fixture
def reviewer_client(world):
    c = Client()
    c.force_login(world.users["reviewer"])
    return c


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def _audio(client, clip):
    return client.get(reverse("review:clip_audio", kwargs={"clip_id": clip.pk}))


def _set_path(clip, value: str) -> None:
    Clip.objects.filter(pk=clip.pk).update(audio_path=value)
    clip.refresh_from_db()


@pytest.mark.parametrize("stored", [
    "%252e%252e/secret/secret.wav",       # double-encoded ../
    "..%252fsecret%252fsecret.wav",        # double-encoded /
    "%2e%2e%2fsecret%2fsecret.wav",        # single-encoded, one segment
    "sub/../../secret/secret.wav",         # .. after a real folder
    "./../secret/secret.wav",
    "C:\\secret\\secret.wav",              # Windows drive
    "\\\\server\\share\\secret.wav",       # UNC
    "//server/share/secret.wav",
    "~/secret.wav",
])
def test_stored_paths_that_would_leave_the_root_are_refused(
    world, reviewer_client, secret, stored
):
    (world.audio_root / "sub").mkdir(exist_ok=True)
    clip = world.clips[0]
    _set_path(clip, stored)
    resp = _audio(reviewer_client, clip)
    assert resp.status_code == 404
    assert secret.read_bytes() not in _body(resp)


def test_symlinked_folder_out_of_the_root_is_refused(world, reviewer_client, secret):
    os.symlink(secret.parent, world.audio_root / "outside")
    clip = world.clips[0]
    _set_path(clip, "outside/secret.wav")
    with pytest.raises(AudioPathRefused):
        clip_audio_file(clip)
    resp = _audio(reviewer_client, clip)
    assert resp.status_code == 404 and secret.read_bytes() not in _body(resp)
    # The curation page does not offer the file either (its player gets a 404).
    cora = Client()
    cora.force_login(world.users["curator"])
    assert _audio(cora, clip).status_code == 404


def test_audio_root_itself_a_symlink_still_serves_its_own_files(world, reviewer_client,
                                                                  tmp_path):
    """Resolving the root too: a dataset whose root is a symlink to the real folder
    serves its files (the check compares resolved paths on both sides)."""
    link = tmp_path / "root-link"
    os.symlink(world.audio_root, link)
    world.dataset.audio_root = str(link)
    world.dataset.save(update_fields=["audio_root"])
    resp = reviewer_client.get(reverse("review:clip_audio",
                                       kwargs={"clip_id": world.clips[0].pk}),
                               HTTP_RANGE="bytes=0-3")
    assert resp.status_code == 206 and _body(resp) == b"RIFF"


def test_nul_byte_in_a_stored_path(world, secret):
    clip = world.clips[0]
    # PostgreSQL refuses NUL in text, so such a path can never be stored ...
    with pytest.raises((ValueError, DataError)), transaction.atomic():
        Clip.objects.filter(pk=clip.pk).update(audio_path="clip.wav\x00../secret/secret.wav")
    # ... and the check refuses it anyway, before touching the file system.
    clip.audio_path = "clip0000000.wav\x00/../../secret/secret.wav"
    with pytest.raises(AudioPathRefused):
        clip_audio_file(clip)


@pytest.mark.parametrize("tail", [
    "%00", "..%00/", "%2500", "..%252f..%252fsecret%252fsecret.wav",
    "%252e%252e/%252e%252e/etc/passwd", "..%c0%af..%c0%afetc/passwd",
    "%2F..%2F..%2Fetc%2Fpasswd",
])
def test_encoded_tricks_in_the_url_do_not_route(world, reviewer_client, tail):
    base = reverse("review:clip_audio", kwargs={"clip_id": world.clips[0].pk})
    resp = reviewer_client.get(base + tail)
    # A NUL in the path is refused before routing (400, relabel_app.text_input).
    assert resp.status_code == (400 if "%00" in tail else 404)
    assert not _body(resp).startswith(b"RIFF")


def test_the_real_file_is_still_served(world, reviewer_client):
    resp = _audio(reviewer_client, world.clips[0])
    assert resp.status_code == 200 and _body(resp)[:4] == b"RIFF"
