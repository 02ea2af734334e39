"""Whether a clip is a real YouTube segment (the "segment on YouTube" link)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from relabel_app.models import Clip

_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")


def youtube_segment_url(clip: Clip) -> str | None:
    """The segment's YouTube URL, or None for a clip that is not one: a synthetic dataset
    (the demo clips) or an id that is not YouTube's 11 characters of [A-Za-z0-9_-]."""
    if clip.dataset.synthetic or not _YOUTUBE_ID.fullmatch(clip.ytid or ""):
        return None
    return "https://www.youtube.com/watch?" + urlencode({"v": clip.ytid, "t": int(clip.start_s)})
