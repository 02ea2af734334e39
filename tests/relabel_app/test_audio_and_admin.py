import io
import wave

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from relabel_app.audio_matching import dataset_match_audio
from relabel_app.models import Clip, Dataset
from relabel_app.segment_import import segments_import

pytestmark = pytest.mark.django_db

CSV = (
    'abcdefghijk, 30.000, 40.000, "/m/09x0r"\n'
    'bcdefghijkl, 0.000, 10.000, "/m/05tny_"\n'
    'cdefghijklm, 0.000, 10.000, "/m/05tny_"\n'
    '-defghijklm, 0.000, 10.000, "/m/05tny_"\n'
)


def write_wav(path, seconds=1.5, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    data = (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())


def test_audio_folder_matched_by_ytid(tmp_path):
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    write_wav(root / "Yabcdefghijk.wav")
    write_wav(root / "sub" / "bcdefghijkl_0_10.wav", seconds=2.0, sr=16000)
    (root / "cdefghijklm.wav").write_bytes(b"not audio at all")
    write_wav(root / "zzzzzzzzzzz.wav")  # no such clip
    segments_import(source=io.BytesIO(CSV.encode()), source_name="x", dataset_name="a",
                    audio_root=str(root))
    r = dataset_match_audio(dataset_name="a")
    assert (r.matched, r.unreadable, r.missing, r.unmatched_files) == (2, 1, 1, 1)
    clips = {c.ytid: c for c in Clip.objects.filter(dataset__name="a")}
    ok = clips["abcdefghijk"]
    assert (ok.audio_status, ok.audio_path, ok.sample_rate) == ("ok", "Yabcdefghijk.wav", 22050)
    assert ok.duration_s == pytest.approx(1.5)
    assert clips["bcdefghijkl"].audio_path == "sub/bcdefghijkl_0_10.wav"
    assert clips["cdefghijklm"].audio_status == "error" and clips["cdefghijklm"].audio_error
    assert clips["-defghijklm"].audio_status == "missing"


def test_import_command_with_audio_root(tmp_path, capsys):
    root = tmp_path / "audio"
    root.mkdir()
    write_wav(root / "Yabcdefghijk.wav")
    csv = tmp_path / "s.csv"
    csv.write_text(CSV)
    call_command("import_segments", str(csv), "--dataset", "b", "--audio-root", str(root))
    assert "audio: 1 clips matched to files" in capsys.readouterr().out
    assert Dataset.objects.get(name="b").audio_root == str(root.resolve())


def test_admin_clip_list_shows_labels_with_bounded_queries(admin_client, django_assert_max_num_queries):
    segments_import(source=io.BytesIO(CSV.encode()), source_name="x", dataset_name="c")
    url = reverse("admin:relabel_app_clip_changelist")
    with django_assert_max_num_queries(12):
        resp = admin_client.get(url)
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "abcdefghijk" in body and "Speech" in body and "Bark" in body
    resp = admin_client.get(url, {"q": "bcdefghijkl"})
    assert "bcdefghijkl" in resp.content.decode()
    assert "abcdefghijk" not in resp.content.decode().split("result_list")[1]


def test_make_demo_clips_builds_a_synthetic_dataset(tmp_path, settings, capsys):
    settings.AUDIO_ROOT = tmp_path
    call_command("make_demo_clips")
    ds = Dataset.objects.get(name="demo")
    assert ds.synthetic and "Synthetic" in ds.description
    assert Clip.objects.filter(dataset=ds, audio_status="ok").count() == 16
    assert all(c.duration_s == pytest.approx(10.0) for c in Clip.objects.filter(dataset=ds))
    call_command("make_demo_clips")  # idempotent
    assert Clip.objects.filter(dataset=ds).count() == 16
