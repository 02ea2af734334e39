"""Issue 12, breaks 3 and 7: the audio view. The attacks: ``Range: bytes=<5000 nines>-``
(a 500 from int()'s digit limit); ``audio_path`` = ``evil.html`` holding a script (served
as text/html); ``Dataset.audio_root = "/"`` with ``audio_path`` = ``etc/passwd`` (served
/etc/passwd), set directly or through the admin."""

from __future__ import annotations

import io
import wave

import pytest
from django.test import Client
from django.urls import reverse

from relabel_app.models import Clip, Dataset
from review.audio_serving import sniff_audio_type
from tests.factories import ClipFactory, DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db


def _wav_bytes(n: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x01\x00" * n)
    return buf.getvalue()


@pytest.fixture
def reviewer_client():
    c = Client(raise_request_exception=False)
    c.force_login(UserFactory(role="reviewer"))
    return c


@pytest.fixture
def audio_dir(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    return root


def _clip(root, name: str, data: bytes, dataset_name: str = "audsec") -> Clip:
    (root / name).write_bytes(data)
    ds = DatasetFactory(name=dataset_name, audio_root=str(root))
    return ClipFactory(dataset=ds, audio_path=name, audio_status="ok")


def _url(clip) -> str:
    return reverse("review:clip_audio", kwargs={"clip_id": clip.pk})


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


@pytest.mark.parametrize("spec", [
    "9" * 5000 + "-",
    "-" + "9" * 5000,
    "0-" + "9" * 5000,
    "9" * 19 + "-",
    "0" * 5000 + "1-",
    "\u0663-",  # an Arabic-Indic digit: not a byte offset either
])
def test_range_numbers_that_cannot_be_offsets_answer_416(audio_dir, reviewer_client, spec):
    clip = _clip(audio_dir, "a.wav", _wav_bytes())
    r = reviewer_client.get(_url(clip), HTTP_RANGE=f"bytes={spec}")
    assert r.status_code == 416
    assert r["Content-Range"] == f"bytes */{len(_wav_bytes())}"


def test_a_huge_but_valid_end_is_still_clamped(audio_dir, reviewer_client):
    data = _wav_bytes()
    clip = _clip(audio_dir, "a.wav", data)
    r = reviewer_client.get(_url(clip), HTTP_RANGE="bytes=10-" + "9" * 18)
    assert r.status_code == 206 and _body(r) == data[10:]


def test_an_html_file_is_never_served(audio_dir, reviewer_client):
    clip = _clip(audio_dir, "evil.html", b"<html><script>alert(document.cookie)</script>")
    r = reviewer_client.get(_url(clip))
    assert r.status_code == 404
    assert b"<script>" not in _body(r)


def test_html_named_wav_is_refused_and_wav_named_html_is_served_as_audio(audio_dir,
                                                                          reviewer_client):
    """By content, not by name."""
    evil = _clip(audio_dir, "evil.wav", b"<script>alert(1)</script>" * 4, "audsec1")
    r = reviewer_client.get(_url(evil))
    assert r.status_code == 404 and b"<script>" not in _body(r)
    odd = _clip(audio_dir, "sound.html", _wav_bytes(), "audsec2")
    r = reviewer_client.get(_url(odd))
    assert r.status_code == 200 and r["Content-Type"] == "audio/wav"
    assert r["X-Content-Type-Options"] == "nosniff"


def test_the_service_refuses_the_html_file(audio_dir):
    from review.audio_serving import AudioPathRefused, clip_audio_file

    clip = _clip(audio_dir, "evil.html", b"<script>alert(1)</script>")
    with pytest.raises(AudioPathRefused, match="not an audio file"):
        clip_audio_file(clip)


@pytest.mark.parametrize("head,expected", [
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    (b"OggS\x00\x02", "audio/ogg"),
    (b"ID3\x04\x00", "audio/mpeg"),
    (b"\xff\xfb\x90\x64", "audio/mpeg"),
    (b"\x00\x00\x00\x20ftypM4A \x00", "audio/mp4"),
    (b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    (b"<html>", None),
    (b"%PDF-1.7", None),
    (b"\x89PNG\r\n\x1a\n", None),
    (b"RIFF\x00\x00\x00\x00AVI ", None),
    (b"", None),
])
def test_sniffing(head, expected):
    assert sniff_audio_type(head) == expected


def test_a_root_outside_the_allowed_folders_serves_nothing(reviewer_client):
    """Dataset.audio_root = "/" set behind the model's back (no validation): the serve-time
    check still refuses /etc/passwd (and a real WAV file would be refused the same way)."""
    ds = DatasetFactory(name="rootslash")
    Dataset.objects.filter(pk=ds.pk).update(audio_root="/")
    clip = ClipFactory(dataset=ds, audio_path="etc/passwd", audio_status="ok")
    r = reviewer_client.get(_url(clip))
    assert r.status_code == 404
    assert b"root:" not in _body(r)


def test_serve_time_check_refuses_a_wav_under_a_disallowed_root(tmp_path, reviewer_client,
                                                                settings, audio_dir):
    clip = _clip(audio_dir, "a.wav", _wav_bytes())
    assert reviewer_client.get(_url(clip)).status_code == 200
    settings.RELABEL_AUDIO_ROOTS = [tmp_path / "only-here"]
    assert reviewer_client.get(_url(clip)).status_code == 404


@pytest.mark.parametrize("root", ["/", "/etc", "relative/dir", "/tmp/../etc"])
def test_model_validation_refuses_roots_outside_the_setting(root):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="RELABEL_AUDIO_ROOTS"):
        Dataset(name="rootcheck", audio_root=root).full_clean()


def test_admin_refuses_audio_root_slash():
    admin = UserFactory(username="root-admin", role="")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    ds = DatasetFactory(name="adminds")
    c = Client()
    c.force_login(admin)
    url = reverse("admin:relabel_app_dataset_change", args=[ds.pk])
    r = c.post(url, {"name": "adminds", "description": "", "audio_root": "/",
                     "review_priority": "uncertain", "required_reviews": 1})
    assert r.status_code == 200  # the form again, with the error
    assert "RELABEL_AUDIO_ROOTS" in r.content.decode()
    ds.refresh_from_db()
    assert ds.audio_root == ""
    r = c.post(reverse("admin:relabel_app_dataset_add"),
               {"name": "<img> ds/../x", "description": "", "audio_root": "",
                "review_priority": "uncertain", "required_reviews": 1})
    assert r.status_code == 200 and "errorlist" in r.content.decode()
    assert not Dataset.objects.filter(name="<img> ds/../x").exists()


def test_import_refuses_an_audio_root_outside_the_setting(tmp_path):
    from django.core.management import CommandError, call_command

    csv = tmp_path / "x.csv"
    csv.write_text('# a\n# b\n# c\nabcdefghijk, 0.000, 10.000, "/m/09x0r"\n')
    with pytest.raises(CommandError, match="RELABEL_AUDIO_ROOTS"):
        call_command("import_segments", str(csv), "--dataset", "rootimp", "--audio-root", "/etc")
    assert not Dataset.objects.filter(name="rootimp").exists()
