"""Stage 2: free-form sound labels from the caption summary, by a text LLM.

The prompt (``PredictConfig.template``) carries the label-count control: it asks for
``min_labels`` to ``max_labels`` labels (defaults 2 to 4, around the corpus prior of about
2.4 to 2.6 valid labels per clip) and says that speech content is never a label.

Retry: an answer that parses to no labels is answered with ``cfg.retry_prompt`` in the
same conversation (the empty answer stays in the history, so a deterministic model gets
a different input), up to ``cfg.max_attempts`` answers in all. Then ``ok=False`` and
``error="answer parsed to no labels"``.

Truncation: the labels the model returns beyond ``2 * max_labels`` (``cfg.keep_factor``)
are dropped (kept in ``PredictResult.dropped``): the model was asked for at most
``max_labels``, and an answer that runs far past it is listing, not labelling. A count
between ``max_labels`` and the limit is kept whole: the CLAP filter and the reviewers
decide. ``keep_factor=0`` disables truncation.

Best-of-N (the original re-ran stages 2 to 4 and kept the attempt with the best CLAP
scores): attempt 1 decodes greedily, attempts 2..N sample with ``cfg.temperature`` and
``cfg.top_p`` and a seed derived from (run, clip, attempt), stored in the attempt's
``sampling``; :func:`run_predict_best_of_n` runs a chunk's clips and attempts in batched
model calls (``cfg.batch_size`` requests per call).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.backends.base import Sampling, TextChat, chat_each, derive_seed
from pipeline.stages.textutil import one_line, strip_think

PREDICT_TEMPLATE = (
    "You label sound events for the AudioSet dataset. Below is a description of a "
    "10-second audio clip.\n\n"
    "Description:\n{summary}\n\n"
    "List the distinct sounds that can be heard, as short sound labels of one to four words "
    "each (for example: dog barking, male speech, acoustic guitar, rain). Give between "
    "{min_labels} and {max_labels} labels; most clips need two or three. Label the sounds, "
    "not what they mean: the content of speech (transcribed words, topics, what is said "
    "or sung in lyrics) is never a label; label the voice itself instead (for example: "
    "male speech, female singing). Do not label sounds the description says are absent.\n"
    "Answer with the labels only, on one line, separated by commas."
)
RETRY_PROMPT = (
    "Your answer contained no labels. Reply with only the sound labels, on one line, "
    "separated by commas."
)
NO_LABELS_ERROR = "answer parsed to no labels"

MAX_LABEL_WORDS = 6
MAX_LABEL_CHARS = 60


@dataclass
class PredictConfig:
    template: str = PREDICT_TEMPLATE  # placeholders {summary}, {min_labels}, {max_labels}
    system_prompt: str = ""  # sent as a system message when not empty
    retry_prompt: str = RETRY_PROMPT
    min_labels: int = 2
    max_labels: int = 4
    max_attempts: int = 2
    keep_factor: int = 2  # keep at most keep_factor * max_labels labels; 0: keep all
    batch_size: int = 16  # requests per batched model call (one generate)
    # Best-of-N: attempt 1 is greedy, attempts 2..N sample with these (Ollama's defaults,
    # which the original's Mistral ran with) and a seed per (run, clip, attempt).
    temperature: float = 0.8
    top_p: float = 0.9

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ValueError("need temperature > 0 and 0 < top_p <= 1 for sampled attempts")
        if not 1 <= self.min_labels <= self.max_labels:
            raise ValueError("need 1 <= min_labels <= max_labels")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def keep_limit(self) -> int | None:
        return self.keep_factor * self.max_labels if self.keep_factor > 0 else None


@dataclass
class PredictResult:
    labels: list[str]
    raw_answers: list[str]  # every answer, as received (think blocks included)
    attempts: int
    ok: bool
    error: str = ""
    dropped: list[str] = field(default_factory=list)  # parsed but over the keep limit
    messages: list[dict] = field(default_factory=list)  # the whole conversation
    # {"temperature", "top_p", "seed"} of a sampled best-of-N attempt; None when greedy.
    # A retry inside the attempt used seed + 1, + 2, ...
    sampling: dict | None = None


def build_predict_messages(summary: str, cfg: PredictConfig | None = None) -> list[dict]:
    cfg = cfg or PredictConfig()
    # str.replace, not str.format: a summary may itself contain braces
    prompt = (
        cfg.template.replace("{summary}", summary.strip())
        .replace("{min_labels}", str(cfg.min_labels))
        .replace("{max_labels}", str(cfg.max_labels))
    )
    messages: list[dict] = []
    if cfg.system_prompt:
        messages.append({"role": "system", "content": cfg.system_prompt})
    messages.append({"role": "user", "content": prompt})
    return messages


# --- parsing ----------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_BULLET = re.compile(
    r"^\s*(?:[-*\u2022\u2013\u2014+>]+|\(?\d{1,3}[.)\]:]|\(?[a-zA-Z][.)](?=\s))\s*"
)
_PREFIX = re.compile(
    r"^\s*(?:final\s+)?(?:answer|output|result|labels?|sound\s+labels?|sound\s+events?"
    r"|sounds?|tags?|predicted\s+labels?|audio\s+labels?)\s*[:=\-]\s*",
    re.IGNORECASE,
)
_PROSE_START = re.compile(
    r"^\s*(?:here(?:'s|\s+is|\s+are)?|sure|okay|ok|certainly|of\s+course|based\s+on"
    r"|the\s+following|these\s+are|this\s+(?:is|clip|audio)|i\s|i'|in\s+this|from\s+the"
    r"|according\s+to|note|please|let\s+me|as\s+requested)\b",
    re.IGNORECASE,
)
_NOTE_START = re.compile(r"^\s*(?:note|please|explanation|reasoning)\b", re.IGNORECASE)
_STRIP_CHARS = " \t\"'`*_[]{}.,;:!?\u201c\u201d\u2018\u2019\u00ab\u00bb"
_COLON_LEAD = re.compile(r"^([^,;:]{1,40}):\s*(.*)$")
_SPLIT = re.compile(r"\s*[,;|\n]\s*")


def _clean_label(raw: str) -> str:
    label = one_line(raw)
    # markdown emphasis and surrounding quotes/brackets, trailing punctuation
    label = label.replace("**", "").replace("__", "")
    return label.strip(_STRIP_CHARS)


def _from_json(text: str) -> list[str] | None:
    """Labels from a JSON array or object in the text, or None when there is none."""
    for opener, closer in (("[", "]"), ("{", "}")):
        start = text.find(opener)
        end = text.rfind(closer)
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(text[start : end + 1])
        except ValueError:
            continue
        if isinstance(data, dict):
            for key in ("labels", "sound_labels", "sounds", "tags", "answer"):
                if key in data:
                    data = data[key]
                    break
            else:
                lists = [v for v in data.values() if isinstance(v, list)]
                data = lists[0] if lists else list(data.values())
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list):
            out = []
            for item in data:
                if isinstance(item, dict):
                    item = item.get("label") or item.get("name") or item.get("sound") or ""
                if isinstance(item, str | int | float) and not isinstance(item, bool):
                    out.append(str(item))
            return out
    return None


def _from_lines(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        line = _BULLET.sub("", line, count=1)
        line = line.replace("**", "")
        stripped = _PREFIX.sub("", line, count=1)
        if stripped != line:
            out.extend(_SPLIT.split(stripped))
            continue
        if _NOTE_START.match(line):
            continue
        if _PROSE_START.match(line):
            # "Here are the labels: a, b" -> the part after the colon; otherwise drop
            if ":" in line:
                out.extend(_SPLIT.split(line.split(":", 1)[1]))
            continue
        lead = _COLON_LEAD.match(line)
        if lead and len(lead.group(1).split()) <= 5:
            # "The sounds are: a, b" -> "a, b"
            out.extend(_SPLIT.split(lead.group(2)))
            continue
        words = line.split()
        if len(words) > 8 and "," not in line and ";" not in line:
            continue  # a sentence, not a list
        out.extend(_SPLIT.split(line))
    return out


def parse_labels(text: str | None) -> list[str]:
    """Free-form labels out of an LLM answer, in order, deduplicated case-insensitively.

    Handles think blocks, code fences, JSON arrays / {"labels": [...]}, comma lists,
    bullet and numbered lists, "Labels:" prefixes, prose lead-ins and notes, quotes and
    markdown emphasis. Labels over 6 words or 60 characters are dropped as junk. Nothing
    is unescaped or escaped: text such as ``<script>`` stays plain text."""
    body = strip_think(text)
    fences = _FENCE.findall(body)
    body = "\n".join(fences) if fences else body.replace("```", "\n")
    found = _from_json(body)
    if found is None:
        found = _from_lines(body)
    labels: list[str] = []
    seen: set[str] = set()
    for raw in found:
        label = _clean_label(raw)
        if not label or not re.search(r"[^\W\d_]", label):
            continue
        if len(label) > MAX_LABEL_CHARS or len(label.split()) > MAX_LABEL_WORDS:
            continue
        key = label.casefold()
        if key in seen:
            continue
        seen.add(key)
        labels.append(label)
    return labels


def attempt_sampling(cfg: PredictConfig, attempt: int, *seed_key: object) -> Sampling | None:
    """Decoding for best-of-N attempt ``attempt`` (0-based) of one clip: the first attempt
    is greedy (None); later ones sample with ``cfg.temperature`` and ``cfg.top_p`` and a
    seed derived from ``seed_key`` (the run and the clip) and the attempt, so a rerun of
    the same run draws the same answers."""
    if attempt == 0:
        return None
    return Sampling(cfg.temperature, cfg.top_p, derive_seed(*seed_key, attempt))


def _steps(summary: str, cfg: PredictConfig, sampling: Sampling | None):
    """One clip's conversation as a generator of requests (it yields (messages, sampling)
    and receives each answer); returns the PredictResult."""
    messages = build_predict_messages(summary, cfg)
    raw_answers: list[str] = []
    labels: list[str] = []
    for attempt in range(1, cfg.max_attempts + 1):
        if attempt > 1:
            messages.append({"role": "user", "content": cfg.retry_prompt})
        # A retry of a sampled attempt draws with the next seed (same for every rerun).
        this = sampling.reseeded(attempt - 1) if sampling is not None else None
        answer = yield [dict(m) for m in messages], this
        answer = answer if isinstance(answer, str) else str(answer or "")
        raw_answers.append(answer)
        messages.append({"role": "assistant", "content": answer})
        labels = parse_labels(answer)
        if labels:
            break
    used = sampling.as_dict() if sampling is not None else None
    if not labels:
        return PredictResult(
            labels=[],
            raw_answers=raw_answers,
            attempts=len(raw_answers),
            ok=False,
            error=NO_LABELS_ERROR,
            messages=messages,
            sampling=used,
        )
    limit = cfg.keep_limit
    dropped = labels[limit:] if limit is not None else []
    kept = labels[:limit] if limit is not None else labels
    return PredictResult(
        labels=kept,
        raw_answers=raw_answers,
        attempts=len(raw_answers),
        ok=True,
        dropped=dropped,
        messages=messages,
        sampling=used,
    )


def run_predict_batch(
    chat: TextChat,
    jobs: Sequence[tuple[str, Sampling | None]],
    cfg: PredictConfig | None = None,
    batch_size: int | None = None,
) -> list[PredictResult | Exception]:
    """Ask for labels for many ``(summary, sampling)`` jobs with batched model calls: every
    job's first question in one batch (``cfg.batch_size`` requests per call at most), then
    the retry question for the jobs whose answer parsed to no labels, and so on. Greedy
    jobs get exactly what :func:`run_predict` gives them alone. One entry per job: its
    PredictResult, or the exception that failed it."""
    cfg = cfg or PredictConfig()
    size = batch_size or cfg.batch_size
    gens = {i: _steps(summary, cfg, sampling) for i, (summary, sampling) in enumerate(jobs)}
    out: dict[int, PredictResult | Exception] = {}
    pending = {i: next(g) for i, g in gens.items()}
    while pending:
        order = sorted(pending)
        answers = chat_each(
            chat, [pending[i][0] for i in order], [pending[i][1] for i in order], size
        )
        pending = {}
        for i, answer in zip(order, answers, strict=True):
            if isinstance(answer, Exception):
                out[i] = answer
                continue
            try:
                pending[i] = gens[i].send(answer)
            except StopIteration as done:
                out[i] = done.value
    return [out[i] for i in range(len(jobs))]


def run_predict_best_of_n(
    chat: TextChat,
    clips: Sequence[tuple[str, tuple]],
    cfg: PredictConfig | None = None,
    n: int = 1,
    batch_size: int | None = None,
) -> list[list[PredictResult] | Exception]:
    """``n`` attempts for each ``(summary, seed_key)`` clip, all in batched calls: attempt
    0 greedy, attempts 1..n-1 sampled (:func:`attempt_sampling`, seeded from ``seed_key``,
    e.g. ``(run_id, clip_id)``, and the attempt). One entry per clip: its attempts in
    order, or the first exception among them (the clip fails as a whole)."""
    cfg = cfg or PredictConfig()
    n = max(1, int(n))
    jobs = [
        (summary, attempt_sampling(cfg, a, *key)) for summary, key in clips for a in range(n)
    ]
    flat = run_predict_batch(chat, jobs, cfg, batch_size)
    out: list[list[PredictResult] | Exception] = []
    for c in range(len(clips)):
        mine = flat[c * n : (c + 1) * n]
        err = next((r for r in mine if isinstance(r, Exception)), None)
        out.append(err if err is not None else mine)  # type: ignore[arg-type]
    return out


def run_predict(
    chat: TextChat,
    summary: str,
    cfg: PredictConfig | None = None,
    sampling: Sampling | None = None,
) -> PredictResult:
    """Ask the LLM for labels (see the module docstring). BackendError propagates."""
    out = run_predict_batch(chat, [(summary, sampling)], cfg)[0]
    if isinstance(out, Exception):
        raise out
    return out
