"""Stage 1: caption a clip with an audio-language model in up to three chat rounds.

Flow of one attempt (history kept: every question and answer is appended to one
``messages`` list, which the model receives whole on every call):

1. round 1: ``cfg.round1_prompt`` (describe the sounds, at most 50 words);
2. presence of a human voice is decided (see ``presence_method``); round 2
   (``cfg.round2_prompt``: emotion, gender, language) is asked only when a voice is present;
3. presence of music is decided the same way; round 3 (``cfg.round3_prompt``: genre,
   instruments) is asked only when music is present.

``presence_method``:

- ``"ask"``: before each of rounds 2 and 3 the model gets a yes/no question
  (``cfg.presence_question`` with ``{what}`` filled in) in the same history. An answer
  starting with yes/no decides; otherwise a denial ("there is no music") means absent and
  a plain mention means present; an answer that says neither falls back to ``"read"`` and
  the method is recorded as ``"ask>read"``.
- ``"read"``: keyword read of the round-1 answer; a keyword inside a negated clause
  ("no speech", "without vocals") does not count.

An answer to round 2 or 3 that denies the presence of its subject ("There is no speech",
"I don't hear any vocals", "N/A") is recorded with ``denied=True`` and contributes nothing.

Summary format (exact)::

    Primary content: <round-1 answer>
    Vocal information: <round-2 answer>
    Musical content: <round-3 answer>

Each answer is collapsed to one line (all whitespace runs become one space). A line whose
round was skipped, denied or answered with nothing is left out entirely; the lines that
remain are joined with a single ``"\\n"`` in that fixed order. With nothing at all the
summary is ``""``. The length rule counts every character of this string (labels and
newlines included).

Retry: the whole chat (all rounds) is redone up to ``cfg.max_attempts`` times until
``min_chars <= len(summary) <= max_chars``. Every attempt is kept. The first attempt that
fits is used; when none fits the last one is used, ``summary_ok`` is False and ``reason``
says why. A :class:`~pipeline.backends.base.BackendError` from the model propagates.

Batches: :func:`run_caption_batch` captions a chunk's clips together, each step of the
chat one batched model call over the clips that need it, the retry one batch of the clips
that still fail the length rule (``cfg.batch_size`` requests per call at most).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.backends.base import AudioChat, audio_chat_each
from pipeline.stages.textutil import one_line, strip_think

ROUND1_PROMPT = "Describe the sounds in this audio clip in at most 50 words."
ROUND2_PROMPT = (
    "Describe the human voice in this clip: the speaker's emotion, the speaker's gender, "
    "and the spoken language."
)
ROUND3_PROMPT = "Describe the music in this clip: its genre and the instruments you hear."
PRESENCE_QUESTION = "Is there {what} in this audio clip? Answer only yes or no."
SPEECH_WHAT = "a human voice (speech or singing)"
MUSIC_WHAT = "music"

SUMMARY_PARTS = (
    ("round1", "Primary content"),
    ("round2", "Vocal information"),
    ("round3", "Musical content"),
)


@dataclass
class CaptionConfig:
    round1_prompt: str = ROUND1_PROMPT
    round2_prompt: str = ROUND2_PROMPT
    round3_prompt: str = ROUND3_PROMPT
    presence_question: str = PRESENCE_QUESTION  # "{what}" is replaced per modality
    speech_what: str = SPEECH_WHAT
    music_what: str = MUSIC_WHAT
    presence_method: str = "ask"  # "ask" | "read"
    max_attempts: int = 2
    min_chars: int = 100
    max_chars: int = 500
    batch_size: int = 8  # requests per batched model call (one generate)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.presence_method not in ("ask", "read"):
            raise ValueError(
                f"presence_method must be 'ask' or 'read', not {self.presence_method!r}"
            )
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must not exceed max_chars")


@dataclass
class Presence:
    present: bool
    method: str  # "ask", "read", or "ask>read" (unclear answer, fell back to reading round 1)
    evidence: str  # the model's answer ("ask") or the words that decided ("read")
    question: str | None = None  # the yes/no question asked ("ask" only)


@dataclass
class CaptionRound:
    name: str  # "round1" | "round2" | "round3"
    prompt: str
    answer: str | None = None  # raw answer text; None when skipped
    skipped: bool = False  # not asked: its subject was judged absent
    denied: bool = False  # asked, but the answer denies the subject: contributes nothing
    text: str = ""  # what goes into the summary (one line; "" when skipped/denied/empty)


@dataclass
class CaptionAttempt:
    number: int  # 1-based
    rounds: list[CaptionRound]
    presence: dict[str, Presence]  # keys "speech", "music"
    summary: str
    summary_chars: int
    ok: bool
    reason: str  # "" when ok
    messages: list[dict] = field(default_factory=list)  # the whole chat history


@dataclass
class CaptionResult:
    summary: str
    summary_ok: bool
    reason: str  # "" when ok
    chosen_attempt: int  # index into attempts
    attempts: list[CaptionAttempt]


# --- presence / denial reading ----------------------------------------------------------

_SPEECH_WORDS = (
    r"speech|speak\w*|spoken|talk\w*|voices?|vocals?|vocalist\w*|narrat\w*|conversation\w*"
    r"|dialog\w*|sing|sings|singing|singers?|shout\w*|yell\w*|whisper\w*|announc\w*"
    r"|chant\w*|rap|rapp\w*|says|saying|anyone|anybody|someone|somebody"
)
_MUSIC_WORDS = (
    r"music\w*|songs?|melod\w*|tunes?|instrument\w*|guitars?|pianos?|drums?|drumming"
    r"|violins?|orchestr\w*|band|beats?|chords?|singing|singers?|choir|synth\w*|trumpets?"
    r"|saxophones?|flutes?|bass"
)
_WORDS = {"speech": _SPEECH_WORDS, "music": _MUSIC_WORDS}
# words that, for the "read" method, show presence (no pronouns such as "someone")
_PRESENCE_WORDS = {
    "speech": re.compile(
        r"\b(speech|speak\w*|spoken|talk\w*|voices?|vocals?|vocalist\w*|narrat\w*"
        r"|conversation\w*|dialog\w*|sings|singing|singers?|shout\w*|yell\w*|whisper\w*"
        r"|announc\w*|chant\w*|rapp\w*|says|saying)\b",
        re.IGNORECASE,
    ),
    "music": re.compile(
        r"\b(music\w*|songs?|melod\w*|tunes?|instrument\w*|guitars?|pianos?|drums?|drumming"
        r"|violins?|orchestr\w*|band|chords?|singing|singers?|choir|synth\w*|trumpets?"
        r"|saxophones?|flutes?)\b",
        re.IGNORECASE,
    ),
}
# A denial is a negator followed, within the same comma-free stretch, by a subject word.
# Each negator has the largest number of words allowed between it and the subject word.
_NEGATORS = (
    (
        r"\b(?:no|none|nobody|no\s+one|without|absence\s+of|lack(?:s|ing)?(?:\s+of)?"
        r"|free\s+of|devoid\s+of|never)\b|n't\s+any\b|\bnot\s+any\b",
        3,
    ),
    (
        r"(?:n't|\bnot|\bcannot|\bnever)\s+(?:hear|detect|perceive|notice|make\s+out)\w*"
        r"(?:\s+(?:any|an?|the))?",
        3,
    ),
    (r"(?:n't|\bnot)\s+(?:contain|include|feature|have)\w*", 3),
    (r"\bnot\b", 1),
)
_DENIAL = {
    key: [
        re.compile(rf"(?:{neg})(?:\s+[\w'-]+){{0,{gap}}}?\s+(?:{words})\b", re.IGNORECASE)
        for neg, gap in _NEGATORS
    ]
    for key, words in _WORDS.items()
}
_DENIAL_AFTER = {
    key: re.compile(
        rf"\b(?:{words})\b(?:\s+[\w'-]+){{0,2}}?\s+(?:is|are|was|were)\s+(?:absent"
        r"|not\s+present|missing|not\s+audible|inaudible|not\s+detected)\b",
        re.IGNORECASE,
    )
    for key, words in _WORDS.items()
}
_EMPTY_ANSWERS = {"", "no", "none", "n a", "na", "not applicable", "nothing", "no answer"}
_CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?])\s+|\s*;\s*|,\s+(?=(?:but|however|only|while)\b)", re.IGNORECASE
)
_YES = re.compile(r"^\W*(yes|yeah|yep|true|correct|certainly|definitely)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|nope|false|not)\b", re.IGNORECASE)


def _normalise_quotes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE_SPLIT.split(one_line(text)) if c and c.strip()]


def _clause_denies(clause: str, modality: str) -> bool:
    clause = _normalise_quotes(clause)
    if any(p.search(clause) for p in _DENIAL[modality]):
        return True
    return bool(_DENIAL_AFTER[modality].search(clause))


def is_denial(answer: str | None, modality: str) -> bool:
    """True when the answer says its subject (``"speech"`` or ``"music"``) is absent.

    Decided on the first clause (sentence, or part before "; " / ", but"): "There is no
    music." or "I don't hear any vocals, only wind." deny; "The speaker is calm. There is no
    music." does not deny speech. Bare "No", "None", "N/A", "Not applicable" deny too."""
    text = one_line(strip_think(answer))
    bare = re.sub(r"[^a-z]+", " ", text.lower()).strip()
    if bare in _EMPTY_ANSWERS:
        return True
    clauses = _clauses(text)
    return bool(clauses) and _clause_denies(clauses[0], modality)


def read_presence(text: str | None, modality: str) -> tuple[bool, str]:
    """Keyword read: present when a modality keyword occurs in a clause that does not deny
    it. Returns (present, evidence) where evidence names the deciding words."""
    pattern = _PRESENCE_WORDS[modality]
    denied_words: list[str] = []
    for clause in _clauses(strip_think(text)):
        found = pattern.findall(clause)
        if not found:
            continue
        if _clause_denies(clause, modality):
            denied_words.extend(found)
            continue
        return True, f"keyword: {found[0]}"
    if denied_words:
        return False, f"negated: {denied_words[0]}"
    return False, "no keyword"


def parse_yes_no(answer: str | None, modality: str) -> bool | None:
    """Read a presence answer: True / False, or None when it says neither."""
    text = one_line(strip_think(answer))
    if _YES.match(text):
        return True
    if _NO.match(text) or is_denial(text, modality):
        return False
    present, _ = read_presence(text, modality)
    return True if present else None


# --- the chat ---------------------------------------------------------------------------


def build_summary(rounds: list[CaptionRound]) -> str:
    """The three-part summary (see the module docstring for the exact format)."""
    texts = {r.name: r.text for r in rounds}
    lines = [f"{label}: {texts[name]}" for name, label in SUMMARY_PARTS if texts.get(name)]
    return "\n".join(lines)


def _check_length(summary: str, cfg: CaptionConfig) -> str:
    n = len(summary)
    if n < cfg.min_chars:
        return f"summary too short ({n} < {cfg.min_chars} chars)"
    if n > cfg.max_chars:
        return f"summary too long ({n} > {cfg.max_chars} chars)"
    return ""


# Each attempt is written as a generator of model requests: it yields the whole history
# (a copy) whenever it needs an answer and receives the answer back. One attempt for one
# clip is then the same code whether the answers come one at a time (run_caption) or from
# one batched generate over a chunk's clips (run_caption_batch, which advances every
# clip's attempt in lockstep: at each step, the clips that need an answer form one batch).

Steps = Generator[list[dict], str, CaptionAttempt]


def _ask(messages: list[dict], prompt: str) -> Generator[list[dict], str, str]:
    messages.append({"role": "user", "content": prompt})
    # the adapter gets a copy, so it cannot change our history behind our back
    answer = yield [dict(m) for m in messages]
    answer = answer if isinstance(answer, str) else str(answer or "")
    messages.append({"role": "assistant", "content": answer})
    return answer


def _decide_presence(
    messages: list[dict], modality: str, round1_answer: str, cfg: CaptionConfig
) -> Generator[list[dict], str, Presence]:
    if cfg.presence_method == "ask":
        what = cfg.speech_what if modality == "speech" else cfg.music_what
        question = cfg.presence_question.format(what=what)
        answer = yield from _ask(messages, question)
        decided = parse_yes_no(answer, modality)
        if decided is not None:
            return Presence(
                present=decided, method="ask", evidence=one_line(answer), question=question
            )
        present, evidence = read_presence(round1_answer, modality)
        return Presence(
            present=present,
            method="ask>read",
            evidence=f"unclear answer {one_line(answer)!r}; round 1 {evidence}",
            question=question,
        )
    present, evidence = read_presence(round1_answer, modality)
    return Presence(present=present, method="read", evidence=evidence)


def attempt_steps(cfg: CaptionConfig, number: int) -> Steps:
    """One attempt (all rounds) for one clip, as a generator of requests (see above)."""
    messages: list[dict] = []
    rounds: list[CaptionRound] = []
    presence: dict[str, Presence] = {}

    answer1 = yield from _ask(messages, cfg.round1_prompt)
    rounds.append(
        CaptionRound("round1", cfg.round1_prompt, answer1, text=one_line(strip_think(answer1)))
    )

    for name, modality, prompt in (
        ("round2", "speech", cfg.round2_prompt),
        ("round3", "music", cfg.round3_prompt),
    ):
        p = yield from _decide_presence(messages, modality, answer1, cfg)
        presence[modality] = p
        if not p.present:
            rounds.append(CaptionRound(name, prompt, None, skipped=True))
            continue
        answer = yield from _ask(messages, prompt)
        denied = is_denial(answer, modality)
        text = "" if denied else one_line(strip_think(answer))
        rounds.append(CaptionRound(name, prompt, answer, denied=denied, text=text))

    summary = build_summary(rounds)
    reason = _check_length(summary, cfg)
    return CaptionAttempt(
        number=number,
        rounds=rounds,
        presence=presence,
        summary=summary,
        summary_chars=len(summary),
        ok=not reason,
        reason=reason,
        messages=messages,
    )


def _result(attempts: list[CaptionAttempt]) -> CaptionResult:
    chosen = len(attempts) - 1
    last = attempts[chosen]
    reason = ""
    if not last.ok:
        reason = (
            f"no attempt met the length rule in {len(attempts)} attempt(s); last: {last.reason}"
        )
    return CaptionResult(
        summary=last.summary,
        summary_ok=last.ok,
        reason=reason,
        chosen_attempt=chosen,
        attempts=attempts,
    )


def run_caption_batch(
    chat: AudioChat,
    clips: Sequence[tuple[np.ndarray, int]],
    cfg: CaptionConfig | None = None,
    batch_size: int | None = None,
) -> list[CaptionResult | Exception]:
    """Caption many clips (``(audio, sample_rate)`` each) with batched model calls.

    Attempt 1 runs for every clip, its steps in lockstep: each step is one batched call
    (``cfg.batch_size`` requests at most, or ``batch_size``) over the clips that still need
    an answer at that step (round 1 for all; then the presence question, round 2 or round 3
    for the clips that get them). The retry is attempt 2 for the clips whose summary fails
    the length rule, batched the same way, and so on up to ``cfg.max_attempts``. Greedy
    decoding makes each clip's result exactly what :func:`run_caption` gives it alone.
    Returns one CaptionResult per clip, or the exception that failed that clip (a backend
    error for one request fails only its clip)."""
    cfg = cfg or CaptionConfig()
    size = batch_size or cfg.batch_size
    attempts: list[list[CaptionAttempt]] = [[] for _ in clips]
    failed: dict[int, Exception] = {}
    todo = list(range(len(clips)))
    for number in range(1, cfg.max_attempts + 1):
        if not todo:
            break
        gens = {i: attempt_steps(cfg, number) for i in todo}
        pending = {i: next(g) for i, g in gens.items()}
        while pending:
            order = sorted(pending)
            answers = audio_chat_each(
                chat, [(clips[i][0], clips[i][1], pending[i]) for i in order],
                batch_size=size,
            )
            pending = {}
            for i, answer in zip(order, answers, strict=True):
                if isinstance(answer, Exception):
                    failed[i] = answer
                    continue
                try:
                    pending[i] = gens[i].send(answer)
                except StopIteration as done:
                    attempts[i].append(done.value)
        todo = [i for i in todo if i not in failed and not attempts[i][-1].ok]
    return [failed[i] if i in failed else _result(attempts[i]) for i in range(len(clips))]


def run_caption(
    chat: AudioChat, audio: np.ndarray, sample_rate: int, cfg: CaptionConfig | None = None
) -> CaptionResult:
    """Caption one clip (see the module docstring). BackendError propagates."""
    out = run_caption_batch(chat, [(audio, sample_rate)], cfg)[0]
    if isinstance(out, Exception):
        raise out
    return out
