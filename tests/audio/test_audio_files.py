"""relabel_app.audio_files: probing, file-name parsing, folder scans."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from relabel_app.audio_files import (
    AudioDecodeError,
    AudioInfo,
    parse_audio_filename,
    probe_audio,
    scan_audio_folder,
    sniff_container,
    ytid_from_filename,
)


def _sine(sr: int, seconds: float) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(sr * seconds)) / sr)


# ------------------------------------------------------------------------------ probe


def test_probe_wav_stereo(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, np.stack([_sine(44100, 2.5)] * 2, axis=1), 44100, subtype="PCM_24")
    info = probe_audio(p)
    assert info == AudioInfo(duration_s=2.5, sample_rate=44100, channels=2, frames=110250,
                             format="WAV/PCM_24")


def test_probe_flac(tmp_path):
    p = tmp_path / "a.flac"
    sf.write(p, _sine(16000, 10.0), 16000)
    info = probe_audio(p)
    assert (info.duration_s, info.sample_rate, info.channels, info.frames) == (
        10.0, 16000, 1, 160000)


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                    reason="ffmpeg/ffprobe not installed")
def test_probe_m4a_through_ffprobe(tmp_path):
    src = tmp_path / "s.wav"
    sf.write(src, _sine(48000, 4.0), 48000)
    p = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "aac", str(p)],
                   check=True, timeout=60)
    info = probe_audio(p)
    assert info.sample_rate == 48000 and info.channels == 1
    assert info.duration_s == pytest.approx(4.0, abs=0.05)
    assert info.format == "ffprobe:aac"
    with pytest.raises(AudioDecodeError, match="corrupt or truncated mp4"):
        probe_audio(p, use_ffprobe=False)


def test_probe_errors(tmp_path):
    with pytest.raises(AudioDecodeError, match="file not found"):
        probe_audio(tmp_path / "missing.wav")
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty file"):
        probe_audio(empty)
    text = tmp_path / "t.flac"
    text.write_text("not audio at all\n" * 10)
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        probe_audio(text)
    zero = tmp_path / "z.wav"
    sf.write(zero, np.zeros(0), 16000)
    with pytest.raises(AudioDecodeError, match="zero-length"):
        probe_audio(zero)
    ok = tmp_path / "ok.wav"
    sf.write(ok, _sine(16000, 1.0), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(ok.read_bytes()[:1000])
    with pytest.raises(AudioDecodeError, match="truncated WAV"):
        probe_audio(cut)
    with pytest.raises(AudioDecodeError, match="file too large"):
        probe_audio(ok, max_bytes=100)


def test_sniff_container(tmp_path):
    cases = {
        "a.wav": b"RIFF\x00\x00\x00\x00WAVEfmt ",
        "b.flac": b"fLaC\x00\x00\x00\x22",
        "c.ogg": b"OggS\x00\x02",
        "d.mp3": b"ID3\x04\x00",
        "e.mp3": bytes([0xFF, 0xFB, 0x90, 0x64]),  # MPEG-1 layer III 128 kb/s 44.1 kHz
        "f.aac": bytes([0xFF, 0xF1, 0x50, 0x80]),  # ADTS
        "g.m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00",
        "h.txt": b"hello world",
        "i.bin": bytes([0xFF, 0xFF, 0xFF, 0xFF]),  # sync bits but reserved fields
    }
    expected = {"a.wav": "wav", "b.flac": "flac", "c.ogg": "ogg", "d.mp3": "mp3",
                "e.mp3": "mpeg", "f.aac": "aac", "g.m4a": "mp4", "h.txt": None, "i.bin": None}
    for name, head in cases.items():
        (tmp_path / name).write_bytes(head)
        assert sniff_container(tmp_path / name) == expected[name], name


# ------------------------------------------------------------------------------ names

NAME_TABLE = [
    # bare and Y-prefixed ids
    ("--PJHxphWEs.wav", ("--PJHxphWEs", None)),
    ("Y--PJHxphWEs.wav", ("--PJHxphWEs", None)),
    ("YxLmP9s_k-0A.flac", ("xLmP9s_k-0A", None)),  # 12 chars: the 'Y' is a prefix
    ("Yabcdefghij.wav", ("Yabcdefghij", None)),  # 11 chars: the 'Y' is part of the id
    ("YYabcdefghi.wav", ("YYabcdefghi", None)),
    ("YYabcdefghij.wav", ("Yabcdefghij", None)),
    ("-abc_def_gh.mp3", ("-abc_def_gh", None)),
    # start only
    ("--PJHxphWEs_30.wav", ("--PJHxphWEs", 30.0)),
    ("--PJHxphWEs_30.000.ogg", ("--PJHxphWEs", 30.0)),
    ("--PJHxphWEs_000030.wav", ("--PJHxphWEs", 30.0)),  # VGGSound-style zero padding
    ("Y--PJHxphWEs_12.5.wav", ("--PJHxphWEs", 12.5)),
    # start and end, seconds
    ("--PJHxphWEs_30_40.wav", ("--PJHxphWEs", 30.0)),
    ("--PJHxphWEs_30.000_40.000.m4a", ("--PJHxphWEs", 30.0)),
    ("Y--PJHxphWEs_30.000_40.000.wav", ("--PJHxphWEs", 30.0)),
    ("YabcdefghiK_0_10.WAV", ("YabcdefghiK", 0.0)),  # upper-case extension
    ("YabcdefghijK_0_10.wav", ("abcdefghijK", 0.0)),
    # ids containing '_' followed by a time: the 11-character rule decides
    ("a_b_c_d_e_f_30_40.wav", ("a_b_c_d_e_f", 30.0)),
    ("abcdefghi___5.wav", ("abcdefghi__", 5.0)),
    ("abcdefghi__5.wav", None),  # 12 characters, no 'Y': neither reading fits
    ("Yabcdefghi__5.wav", ("Yabcdefghi_", 5.0)),  # id 'abcdefghi__' would need '_5'
    ("Yabcdefghi___5.wav", ("abcdefghi__", 5.0)),
    ("abcdefghij__30_40.wav", ("abcdefghij_", 30.0)),
    ("abcdefghijk__30.wav", None),  # two separators
    # start and end, milliseconds (integer span over 60)
    ("--PJHxphWEs_30000_40000.wav", ("--PJHxphWEs", 30.0)),
    ("--PJHxphWEs_0_10000.flac", ("--PJHxphWEs", 0.0)),
    ("--PJHxphWEs_30_90.wav", ("--PJHxphWEs", 30.0)),  # span 60: still seconds
    ("--PJHxphWEs_30_100.wav", ("--PJHxphWEs", 0.03)),  # span 70: milliseconds
    ("--PJHxphWEs_30.0_90.0.wav", ("--PJHxphWEs", 30.0)),  # floats are always seconds
    # not recognised
    ("--PJHxphWEs.txt", None),
    ("--PJHxphWEs", None),
    ("short.wav", None),
    ("--PJHxphWEs_.wav", None),
    ("--PJHxphWEs_30_20.wav", None),  # end before start
    ("--PJHxphWEs_30_30.wav", None),
    ("--PJHxphWEs_-30.wav", None),
    ("--PJHxphWEs_30-40.wav", None),
    ("--PJHxphWEs_1e3.wav", None),
    ("--PJHxphWEs extra.wav", None),
    ("--PJHxphWE!.wav", None),
    ("Y--PJHxphWEsX.wav", None),
    ("clip_--PJHxphWEs.wav", None),
    (".wav", None),
]


@pytest.mark.parametrize("name, expected", NAME_TABLE)
def test_ytid_from_filename(name, expected):
    assert ytid_from_filename(name) == expected


def test_parse_with_directories_and_end():
    p = parse_audio_filename(Path("a/b/Y--PJHxphWEs_30000_40000.wav"))
    assert (p.ytid, p.start_s, p.end_s) == ("--PJHxphWEs", 30.0, 40.0)
    p = parse_audio_filename("x/--PJHxphWEs_7.5.flac")
    assert (p.ytid, p.start_s, p.end_s) == ("--PJHxphWEs", 7.5, None)


# ------------------------------------------------------------------------------ scan


def test_scan_audio_folder(tmp_path):
    files = [
        "Y--PJHxphWEs.wav",
        "sub/abcdefghijk_30.000_40.000.flac",
        "sub/deeper/Yabcdefghij.MP3",
        "sub/notes.txt",
        "sub/my_clip.wav",
        "sub/clip-123456.wav",  # 11 characters of the YTID alphabet: taken as an id
        ".hidden/YxLmP9s_k-0A.wav",
        "sub/.YxLmP9s_k-0A.wav",
        "zz/-abc_def_gh_5.ogg",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    got = list(scan_audio_folder(tmp_path))
    assert got == [
        (Path("Y--PJHxphWEs.wav"), "--PJHxphWEs", None),
        (Path("sub/abcdefghijk_30.000_40.000.flac"), "abcdefghijk", 30.0),
        (Path("sub/clip-123456.wav"), "clip-123456", None),
        (Path("sub/deeper/Yabcdefghij.MP3"), "Yabcdefghij", None),
        (Path("zz/-abc_def_gh_5.ogg"), "-abc_def_gh", 5.0),
    ]
    assert list(scan_audio_folder(tmp_path / "missing")) == []
