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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pipeline.backends.base import TextChat
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

    def __post_init__(self) -> None:
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


def run_predict(chat: TextChat, summary: str, cfg: PredictConfig | None = None) -> PredictResult:
    """Ask the LLM for labels (see the module docstring). BackendError propagates."""
    cfg = cfg or PredictConfig()
    messages = build_predict_messages(summary, cfg)
    raw_answers: list[str] = []
    labels: list[str] = []
    for attempt in range(1, cfg.max_attempts + 1):
        if attempt > 1:
            messages.append({"role": "user", "content": cfg.retry_prompt})
        answer = chat.chat([dict(m) for m in messages])
        answer = answer if isinstance(answer, str) else str(answer or "")
        raw_answers.append(answer)
        messages.append({"role": "assistant", "content": answer})
        labels = parse_labels(answer)
        if labels:
            break
    if not labels:
        return PredictResult(
            labels=[],
            raw_answers=raw_answers,
            attempts=len(raw_answers),
            ok=False,
            error=NO_LABELS_ERROR,
            messages=messages,
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
    )
