"""factory-boy factories and the data helpers shared by every test folder: users, datasets
and clips (with real WAV files), pipeline runs with results and candidates in the shapes
the stages store."""

from __future__ import annotations

import dataclasses
import wave
from pathlib import Path

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from pipeline.models import PipelineRun
from relabel_app.models import Clip, Dataset

MIDS = {
    "speech": "/m/09x0r",
    "dog": "/m/0bt9lr",
    "bark": "/m/05tny_",
    "animal": "/m/0jbk",
    "pets": "/m/068hy",
    "music": "/m/04rlf",
    "siren": "/m/03kmc9",
}


class UserFactory(factory.django.DjangoModelFactory):
    """A user in a role group: ``UserFactory(role="curator")``; ``role=""`` for no role.
    The default role is reviewer, the default password ``pw``."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        name = "reviewer" if extracted is None else extracted
        if create and name:
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"dataset-{n}")


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clip

    dataset = factory.SubFactory(DatasetFactory)
    ytid = factory.Sequence(lambda n: f"clip{n:07d}")
    start_s = 0.0
    end_s = 10.0
    position = factory.Sequence(lambda n: n)


class PipelineRunFactory(factory.django.DjangoModelFactory):
    """A finished run of the tiny profile (no model was run: results come from add_result)."""

    class Meta:
        model = PipelineRun

    dataset = factory.SubFactory(DatasetFactory)
    profile_name = "tiny"
    status = PipelineRun.Status.DONE
    config = factory.LazyAttribute(lambda o: {
        "name": o.profile_name, "random_weights": True,
        "filter": {"threshold": 0.25, "best_of_n": 1}})


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
    return PipelineRunFactory(dataset=dataset, profile_name=profile, status=status,
                              config={"name": profile, "random_weights": random_weights,
                                      "filter": {"threshold": threshold, "best_of_n": 1}})


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
