"""Fixtures for the review app: users per role, a dataset with real WAV files, a pipeline
run whose ClipResult.caption has the shape the caption stage stores
(dataclasses.asdict(pipeline.stages.caption.CaptionResult)), and candidates."""

from __future__ import annotations

import dataclasses
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.factories import UserFactory

MIDS = {
    "speech": "/m/09x0r",
    "dog": "/m/0bt9lr",
    "bark": "/m/05tny_",
    "animal": "/m/0jbk",
    "pets": "/m/068hy",
    "music": "/m/04rlf",
    "siren": "/m/03kmc9",
}


def write_sine_wav(path: Path, seconds: float = 2.0, freq: float = 440.0, rate: int = 16000):
    """A short real WAV: three decaying tone bursts over a little noise (so the waveform
    looks like sound events rather than a flat band)."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.zeros_like(t)
    for onset in (0.05 * seconds, 0.35 * seconds, 0.65 * seconds):
        after = t - onset
        envelope += np.where(after >= 0, np.exp(-np.clip(after, 0, None) * 9.0), 0.0)
    noise = np.random.default_rng(int(freq)).normal(0, 0.02, t.shape)
    signal = 0.6 * np.clip(envelope, 0, 1) * np.sin(2 * np.pi * freq * t) + noise
    samples = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def label(key_or_mid: str):
    from relabel_app.models import Label

    return Label.objects.get(mid=MIDS.get(key_or_mid, key_or_mid))


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita")


@pytest.fixture
def reviewer2(db):
    return UserFactory(username="rob")


@pytest.fixture
def curator(db):
    return UserFactory(username="cora", role="curator")


@pytest.fixture
def audio_root(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    return root


def make_dataset(name: str, audio_root: Path | None = None, n_clips: int = 3,
                 with_audio: bool = True, **kw):
    from relabel_app.models import Clip, Dataset

    ds = Dataset.objects.create(name=name, audio_root=str(audio_root or ""), **kw)
    clips = []
    for i in range(n_clips):
        ytid = f"clip{i:07d}"[:11].ljust(11, "x")
        path = ""
        if with_audio and audio_root is not None:
            write_sine_wav(audio_root / f"{ytid}.wav", freq=220.0 * (i + 1))
            path = f"{ytid}.wav"
        clips.append(Clip.objects.create(
            dataset=ds, ytid=ytid, start_s=10.0 * i, end_s=10.0 * i + 10.0, position=i,
            audio_path=path, audio_status="ok" if path else "missing",
            duration_s=2.0 if path else None, sample_rate=16000 if path else None,
        ))
    return ds, clips


def caption_json(answers: dict[str, str | None], *, attempts: int = 1) -> dict:
    """The JSON the caption stage stores: dataclasses.asdict(CaptionResult)."""
    from pipeline.stages.caption import CaptionAttempt, CaptionResult, CaptionRound, Presence

    def one(number: int) -> CaptionAttempt:
        rounds = []
        for name in ("round1", "round2", "round3"):
            answer = answers.get(name)
            rounds.append(CaptionRound(
                name=name, prompt=f"prompt of {name}", answer=answer,
                skipped=answer is None, text=answer or "",
            ))
        return CaptionAttempt(
            number=number, rounds=rounds,
            presence={
                "speech": Presence(present=answers.get("round2") is not None, method="read",
                                   evidence="keyword: talking"),
                "music": Presence(present=answers.get("round3") is not None, method="read",
                                  evidence="no keyword"),
            },
            summary="Primary content: " + (answers.get("round1") or ""),
            summary_chars=10, ok=number == attempts, reason="" if number == attempts else "short",
        )

    result = CaptionResult(
        summary="Primary content: " + (answers.get("round1") or ""), summary_ok=True, reason="",
        chosen_attempt=attempts - 1, attempts=[one(n) for n in range(1, attempts + 1)],
    )
    return dataclasses.asdict(result)


def make_run(dataset, *, profile="tiny", random_weights=True, threshold=0.25, status="done"):
    from pipeline.models import PipelineRun

    return PipelineRun.objects.create(
        dataset=dataset, profile_name=profile, status=status,
        config={"name": profile, "random_weights": random_weights,
                "filter": {"threshold": threshold, "best_of_n": 1}},
    )


def add_result(run, clip, *, answers=None, candidates=(), free_labels=None, attempts=2):
    """candidates: (mid-or-key, clap_score, tier, phrase) tuples; kept = score >= threshold."""
    from pipeline.models import Candidate, ClipResult

    threshold = run.config["filter"]["threshold"]
    answers = answers or {
        "round1": "A dog barks twice while a man is talking in the background.",
        "round2": "A calm male voice speaking English.",
        "round3": None,
    }
    result = ClipResult.objects.create(
        run=run, clip=clip, caption=caption_json(answers, attempts=attempts),
        summary="Primary content: " + answers["round1"], summary_ok=True,
        caption_status="done", predict_status="done", match_status="done", filter_status="done",
        free_labels=[free_labels or [c[3] for c in candidates]],
    )
    for key, score, tier, phrase in candidates:
        Candidate.objects.create(
            run=run, clip=clip, label=label(key), tier=tier, phrase=phrase,
            clap_score=score, kept=score is not None and score >= threshold, selected=True,
        )
    return result


@pytest.fixture
def review_setup(db, audio_root):
    """A dataset of 3 clips with audio; clip 0 has originals Dog + Speech and a finished
    tiny run with candidates Bark (kept), Speech (kept), Music (filtered)."""
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("demo", audio_root)
    for key in ("dog", "speech"):
        ClipLabel.objects.create(clip=clips[0], label=label(key))
    ClipLabel.objects.create(clip=clips[1], label=label("siren"))
    run = make_run(ds)
    add_result(run, clips[0], candidates=[
        ("bark", 0.41, "exact", "dog barking"),
        ("speech", 0.30, "fuzzy", "man talking"),
        ("music", 0.12, "synonym", "background tune"),
    ])
    return {"dataset": ds, "clips": clips, "run": run}
