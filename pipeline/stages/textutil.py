"""Small text helpers shared by the stages (no Django, no models)."""

from __future__ import annotations

import re

_THINK_BLOCK = re.compile(r"<think\b[^>]*>.*?</think\s*>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<think\b[^>]*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_WS = re.compile(r"\s+")


def strip_think(text: str | None) -> str:
    """Remove reasoning blocks of R1-style models.

    - every closed ``<think>...</think>`` block is removed;
    - a stray ``</think>`` with no opening tag (chat templates that put ``<think>`` in the
      prompt) drops everything before it: the answer is what follows;
    - an unclosed ``<think>`` (the model ran out of tokens while reasoning) drops everything
      from the tag on: the reasoning never reached an answer.
    """
    if not text:
        return ""
    out = _THINK_BLOCK.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(out))
    if closes:
        out = out[closes[-1].end() :]
    opened = _THINK_OPEN.search(out)
    if opened:
        out = out[: opened.start()]
    return out.strip()


def one_line(text: str | None) -> str:
    """Collapse all whitespace (newlines included) to single spaces and strip."""
    return _WS.sub(" ", text or "").strip()
