"""A small demo dataset synthesized on this machine: 16 real 10-second mono WAV clips that
are honest examples of AudioSet classes (speech from espeak-ng, tones, noises, telephone
signals, a siren, synthesized chords, clicks, a ticking clock, silence), with a segments
CSV whose labels are deliberately imperfect, like AudioSet's own.

Every clip has ``true_labels`` (the trainable classes that honestly describe it) and
``original_labels`` (what the demo dataset claims). Four clips carry one WRONG label (a
fine-grained confusion, or a siren called music) and three lack one true label
(MISSING); the others are correct. Which clips are altered is fixed; the seed chooses the
fake YouTube ids and the noise, so one seed always gives the same ids and the same files.

espeak-ng speech is synthetic, so speech clips are labelled "Speech synthesizer" as well
as "Speech" and the voice's gender. Synthesized chords are "Music" and "Synthesizer",
not "Piano". No Django here.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

CLIP_SECONDS = 10.0
DEFAULT_SAMPLE_RATE = 16_000
ESPEAK_TIMEOUT_S = 30.0

# name -> MID, all trainable (index 0..526) classes of the AudioSet ontology
LABELS: dict[str, str] = {
    "Speech": "/m/09x0r",
    "Male speech, man speaking": "/m/05zppz",
    "Female speech, woman speaking": "/m/02zsn",
    "Speech synthesizer": "/m/0brhx",
    "Music": "/m/04rlf",
    "Synthesizer": "/m/0l14qv",
    "Piano": "/m/05r5c",
    "Sine wave": "/m/01v_m0",
    "Noise": "/m/096m7z",
    "White noise": "/m/0chx_",
    "Pink noise": "/m/0cj0r",
    "Beep, bleep": "/m/02fs_r",
    "Siren": "/m/03kmc9",
    "Clicking": "/m/07qc9xj",
    "Clock": "/m/01x3z",
    "Tick-tock": "/m/07qjznl",
    "Telephone": "/m/07cx4",
    "Ringtone": "/m/01hnzm",
    "Dial tone": "/m/015jpf",
    "Busy signal": "/m/01z47d",
    "Silence": "/m/028v0c",
}
LABEL_NAMES: dict[str, str] = {mid: name for name, mid in LABELS.items()}


class DemoSynthesisError(RuntimeError):
    """The demo clips could not be made (espeak-ng missing or failing)."""


@dataclass(frozen=True)
class DemoClip:
    ytid: str
    start_s: float
    end_s: float
    filename: str
    true_labels: list[str]
    original_labels: list[str]
    notes: str
    slug: str = ""
    alteration: str = "none"  # "none" | "wrong" | "missing"
    sample_rate: int = DEFAULT_SAMPLE_RATE

    @property
    def wrong_labels(self) -> list[str]:
        """Original labels that do not describe the clip."""
        return [m for m in self.original_labels if m not in self.true_labels]

    @property
    def missing_labels(self) -> list[str]:
        """True labels the original labels leave out."""
        return [m for m in self.true_labels if m not in self.original_labels]


@dataclass(frozen=True)
class _Spec:
    slug: str
    make: Callable[[_Synth], np.ndarray]
    true: tuple[str, ...]
    wrong: tuple[str, str] | None = None  # (true label replaced, wrong label put instead)
    missing: str | None = None
    description: str = ""


@dataclass
class _Synth:
    sr: int
    rng: np.random.Generator
    tmp: Path
    n: int = field(init=False)
    t: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.n = int(round(CLIP_SECONDS * self.sr))
        self.t = np.arange(self.n) / self.sr

    # -- building blocks ------------------------------------------------------------

    def tone(self, freqs: Sequence[float], seconds: float, amp: float = 0.3) -> np.ndarray:
        t = np.arange(int(round(seconds * self.sr))) / self.sr
        return amp * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)

    def ramp(self, x: np.ndarray, ms: float = 5.0) -> np.ndarray:
        k = min(len(x) // 2, int(self.sr * ms / 1000))
        if k > 0:
            w = np.sin(np.linspace(0, np.pi / 2, k)) ** 2
            x = x.copy()
            x[:k] *= w
            x[-k:] *= w[::-1]
        return x

    def place(self, out: np.ndarray, x: np.ndarray, at_s: float) -> None:
        i = int(round(at_s * self.sr))
        j = min(len(out), i + len(x))
        if i < j:
            out[i:j] += x[: j - i]

    def gated(self, freqs: Sequence[float], on_off: Sequence[tuple[float, float]],
              amp: float = 0.3) -> np.ndarray:
        """Tone switched on for each (start, length) in on_off."""
        out = np.zeros(self.n)
        for start, length in on_off:
            self.place(out, self.ramp(self.tone(freqs, length, amp)), start)
        return out

    def white(self, rms: float = 0.1) -> np.ndarray:
        return rms * self.rng.standard_normal(self.n)

    def pink(self, rms: float = 0.1) -> np.ndarray:
        spec = np.fft.rfft(self.rng.standard_normal(self.n))
        f = np.fft.rfftfreq(self.n, 1 / self.sr)
        f[0] = f[1]
        x = np.fft.irfft(spec / np.sqrt(f), self.n)
        return rms * x / np.sqrt(np.mean(x**2))

    def click(self, centre_hz: float, ms: float = 4.0, amp: float = 0.6) -> np.ndarray:
        """A short decaying burst: noise times a resonance, a few ms long."""
        k = int(self.sr * ms / 1000)
        t = np.arange(k) / self.sr
        env = np.exp(-t / (ms / 5000))
        return amp * env * np.sin(2 * np.pi * centre_hz * t) * (0.5 + 0.5 * self.rng.random(k))

    def chords(self, amp: float = 0.25) -> np.ndarray:
        """C - F - G - C triads, 2.5 s each, additive sine partials with a decaying
        envelope: a plain synthesizer pad."""
        out = np.zeros(self.n)
        roots = [261.63, 349.23, 392.00, 261.63]
        for i, root in enumerate(roots):
            notes = [root, root * 2 ** (4 / 12), root * 2 ** (7 / 12)]
            length = 2.5
            t = np.arange(int(length * self.sr)) / self.sr
            env = np.minimum(t / 0.02, 1.0) * np.exp(-t / 1.2)
            x = sum(
                (0.6 * np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)
                 + 0.1 * np.sin(6 * np.pi * f * t))
                for f in notes
            )
            self.place(out, self.ramp(amp * env * x / len(notes), 10), i * length)
        return out

    def speech(self, voice: str, text: str) -> np.ndarray:
        """espeak-ng speech, resampled, starting at 0.3 s, trimmed to the clip."""
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise DemoSynthesisError("espeak-ng is not installed (apt-get install espeak-ng)")
        wav = self.tmp / f"speech_{voice.replace('+', '_')}_{len(text)}.wav"
        try:
            r = subprocess.run(
                [exe, "-v", voice, "-s", "160", "-w", str(wav), text],
                capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DemoSynthesisError(f"espeak-ng failed: {e}") from None
        if r.returncode != 0 or not wav.is_file():
            err = r.stderr.decode("utf-8", "replace").strip()
            raise DemoSynthesisError(f"espeak-ng failed (exit {r.returncode}): {err}")
        x, sr = sf.read(str(wav), dtype="float64", always_2d=True)
        x = x.mean(axis=1)
        if sr != self.sr:
            g = np.gcd(int(sr), self.sr)
            x = resample_poly(x, self.sr // g, int(sr) // g)
        x = x / max(np.max(np.abs(x)), 1e-9) * 0.7
        out = np.zeros(self.n)
        room = self.n - int(0.3 * self.sr) - int(0.2 * self.sr)
        self.place(out, self.ramp(x[:room], 50), 0.3)
        return out

    # -- the clips ----------------------------------------------------------------

    def male_speech(self) -> np.ndarray:
        return self.speech("en+m3", "The weather today is cloudy with light rain in the "
                           "afternoon. Temperatures will stay mild, and the wind will ease "
                           "by the evening.")

    def female_speech(self) -> np.ndarray:
        return self.speech("en+f3", "Please remember to switch off the lights when you "
                           "leave the room. Thank you for helping us to save energy.")

    def sine(self) -> np.ndarray:
        return self.ramp(self.tone([440.0], CLIP_SECONDS, 0.4), 20)

    def white_noise(self) -> np.ndarray:
        return self.white(0.1)

    def pink_noise(self) -> np.ndarray:
        return self.pink(0.1)

    def beeps(self) -> np.ndarray:
        return self.gated([1000.0], [(0.5 + 1.5 * i, 0.15) for i in range(7)], 0.4)

    def siren(self) -> np.ndarray:
        """A wail: pitch gliding 600 -> 1300 -> 600 Hz every 4 s, a few harmonics."""
        f = 950 - 350 * np.cos(2 * np.pi * self.t / 4.0)
        ph = 2 * np.pi * np.cumsum(f) / self.sr
        x = np.sin(ph) + 0.3 * np.sin(2 * ph) + 0.15 * np.sin(3 * ph)
        return self.ramp(0.3 * x, 200)

    def chord(self) -> np.ndarray:
        return self.chords()

    def clicks(self) -> np.ndarray:
        out = np.zeros(self.n)
        at = 0.2
        while at < CLIP_SECONDS - 0.1:
            self.place(out, self.click(3000 + 1500 * self.rng.random()), at)
            at += self.rng.uniform(0.12, 0.6)
        return out

    def ticking(self) -> np.ndarray:
        out = np.zeros(self.n)
        for i in range(20):
            self.place(out, self.click(2600 if i % 2 == 0 else 1700, 6.0, 0.5), 0.25 + 0.5 * i)
        return out

    def ringtone(self) -> np.ndarray:
        """Electronic trill (1000/1250 Hz alternating 16 times a second), in a
        ring-ring ... pause cadence."""
        trill = np.where((self.t * 16).astype(int) % 2 == 0, 1000.0, 1250.0)
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(trill) / self.sr)
        gate = np.zeros(self.n)
        for start in (0.5, 3.5, 6.5):
            for s, length in ((start, 0.4), (start + 0.6, 0.4)):
                self.place(gate, self.ramp(np.ones(int(length * self.sr)), 5), s)
        return x * gate

    def dial_tone(self) -> np.ndarray:
        """North American precise dial tone: 350 + 440 Hz, continuous."""
        return self.ramp(self.tone([350.0, 440.0], CLIP_SECONDS, 0.4), 20)

    def busy_signal(self) -> np.ndarray:
        """North American busy signal: 480 + 620 Hz, 0.5 s on, 0.5 s off."""
        return self.gated([480.0, 620.0], [(0.25 + i, 0.5) for i in range(10)], 0.4)

    def speech_over_noise(self) -> np.ndarray:
        voice = self.speech("en+f3", "The next train to the city centre departs from "
                            "platform four in five minutes.")
        noise = self.pink(1.0)
        v_rms = np.sqrt(np.mean(voice[voice != 0] ** 2))
        return voice + noise * v_rms / 10 ** (6 / 20)  # about 6 dB SNR while speaking

    def speech_and_music(self) -> np.ndarray:
        voice = self.speech("en+m1", "Welcome back to the show. Coming up after the "
                            "break, an interview with a local baker about bread.")
        return 0.8 * voice + 0.5 * self.chords()

    def silence(self) -> np.ndarray:
        return self.white(10 ** (-75 / 20))  # -75 dBFS hiss, below audibility


_L = LABELS
_SPECS: tuple[_Spec, ...] = (
    _Spec("male_speech", _Synth.male_speech,
          (_L["Speech"], _L["Male speech, man speaking"], _L["Speech synthesizer"]),
          wrong=(_L["Male speech, man speaking"], _L["Female speech, woman speaking"]),
          description="espeak-ng male voice (en+m3) reading a weather report"),
    _Spec("female_speech", _Synth.female_speech,
          (_L["Speech"], _L["Female speech, woman speaking"], _L["Speech synthesizer"]),
          description="espeak-ng female voice (en+f3) reading a notice"),
    _Spec("sine_440", _Synth.sine, (_L["Sine wave"],),
          description="steady 440 Hz sine tone"),
    _Spec("white_noise", _Synth.white_noise, (_L["Noise"], _L["White noise"]),
          missing=_L["White noise"], description="Gaussian white noise"),
    _Spec("pink_noise", _Synth.pink_noise, (_L["Noise"], _L["Pink noise"]),
          description="1/f (pink) noise"),
    _Spec("beeps", _Synth.beeps, (_L["Beep, bleep"],),
          description="seven 150 ms 1 kHz beeps, 1.5 s apart"),
    _Spec("siren", _Synth.siren, (_L["Siren"],),
          wrong=(_L["Siren"], _L["Music"]),
          description="siren wail gliding 600-1300 Hz every 4 s"),
    _Spec("synth_chords", _Synth.chord, (_L["Music"], _L["Synthesizer"]),
          wrong=(_L["Synthesizer"], _L["Piano"]),
          description="C-F-G-C synthesizer chords from additive sine partials"),
    _Spec("clicks", _Synth.clicks, (_L["Clicking"],),
          description="irregular short clicks"),
    _Spec("clock", _Synth.ticking, (_L["Clock"], _L["Tick-tock"]),
          missing=_L["Tick-tock"], description="clock ticking twice a second, tick and tock"),
    _Spec("ringtone", _Synth.ringtone, (_L["Telephone"], _L["Ringtone"]),
          description="electronic telephone trill, ring-ring cadence"),
    _Spec("dial_tone", _Synth.dial_tone, (_L["Telephone"], _L["Dial tone"]),
          description="North American dial tone, 350 + 440 Hz"),
    _Spec("busy_signal", _Synth.busy_signal, (_L["Telephone"], _L["Busy signal"]),
          wrong=(_L["Busy signal"], _L["Dial tone"]),
          description="North American busy signal, 480 + 620 Hz, 0.5 s on/off"),
    _Spec("speech_over_noise", _Synth.speech_over_noise,
          (_L["Speech"], _L["Female speech, woman speaking"], _L["Speech synthesizer"],
           _L["Noise"], _L["Pink noise"]),
          missing=_L["Pink noise"],
          description="espeak-ng female voice announcing a train over pink noise, ~6 dB SNR"),
    _Spec("speech_and_music", _Synth.speech_and_music,
          (_L["Speech"], _L["Male speech, man speaking"], _L["Speech synthesizer"],
           _L["Music"], _L["Synthesizer"]),
          description="espeak-ng male voice (en+m1) over synthesizer chords"),
    _Spec("silence", _Synth.silence, (_L["Silence"],),
          description="digital near-silence (-75 dBFS hiss)"),
)


def demo_ytid(seed: int, slug: str) -> str:
    """Fake 11-character YouTube id: 'demo' + 7 URL-safe base64 characters of a hash of
    (seed, slug). Valid YTID charset [A-Za-z0-9_-]."""
    digest = hashlib.sha256(f"relabel-demo:{seed}:{slug}".encode()).digest()
    return "demo" + base64.urlsafe_b64encode(digest).decode("ascii")[:7]


def _notes(spec: _Spec) -> tuple[str, str]:
    if spec.wrong is not None:
        old, new = spec.wrong
        return "wrong", (f"{spec.description}. Altered: original labels say "
                         f"{LABEL_NAMES[new]!r} instead of {LABEL_NAMES[old]!r} (wrong label).")
    if spec.missing is not None:
        return "missing", (f"{spec.description}. Altered: original labels lack "
                           f"{LABEL_NAMES[spec.missing]!r} (missing label).")
    return "none", f"{spec.description}. Original labels are correct."


def synthesize_demo_clips(
    out_dir: Path, seed: int = 0, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> list[DemoClip]:
    """Write the 16 demo clips (10 s, mono, 16-bit PCM WAV named ``Y<ytid>.wav``) into
    ``out_dir`` and return their descriptions. Same seed, same ids and same files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips: list[DemoClip] = []
    with tempfile.TemporaryDirectory(prefix="demo_tts_") as tmp:
        synth = _Synth(int(sample_rate), np.random.default_rng(seed), Path(tmp))
        for spec in _SPECS:
            synth.rng = np.random.default_rng([seed, len(clips)])
            audio = spec.make(synth)
            audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
            assert audio.shape == (synth.n,), (spec.slug, audio.shape)
            ytid = demo_ytid(seed, spec.slug)
            filename = f"Y{ytid}.wav"
            sf.write(str(out_dir / filename), audio, synth.sr, subtype="PCM_16")
            true = list(spec.true)
            original = list(true)
            if spec.wrong is not None:
                original[original.index(spec.wrong[0])] = spec.wrong[1]
            if spec.missing is not None:
                original.remove(spec.missing)
            alteration, notes = _notes(spec)
            clips.append(DemoClip(
                ytid=ytid, start_s=0.0, end_s=CLIP_SECONDS, filename=filename,
                true_labels=true, original_labels=original, notes=notes, slug=spec.slug,
                alteration=alteration, sample_rate=synth.sr,
            ))
    return clips


def demo_segments_csv(clips: Sequence[DemoClip]) -> str:
    """The clips' original labels in the AudioSet segments CSV format (three ``#`` header
    lines, then ``YTID, start, end, "mid,mid"`` rows)."""
    unique = {m for c in clips for m in c.original_labels}
    positives = sum(len(c.original_labels) for c in clips)
    lines = [
        "# Segments csv created by relabel_app.demo_audio (clips synthesized locally)",
        f"# num_ytids={len({c.ytid for c in clips})}, num_segs={len(clips)}, "
        f"num_unique_labels={len(unique)}, num_positive_labels={positives}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    for c in clips:
        lines.append(f'{c.ytid}, {c.start_s:.3f}, {c.end_s:.3f}, "{",".join(c.original_labels)}"')
    return "\n".join(lines) + "\n"
