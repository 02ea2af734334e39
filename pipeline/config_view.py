"""What a reviewer may see of a run: its resolved configuration and its error texts without
server details (model folders, cache paths, base URLs of model servers, host names in
URLs). Curators see everything; they run the pipeline. Pure functions, no Django."""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "(hidden)"
# An AudioSet MID (/m/09x0r, /t/dd00001) is a label, not a path.
_MID = re.compile(r"/[a-z]/[0-9a-z_]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
# An absolute POSIX or Windows path (or a home-relative one) of two segments or more, inside
# free text ("</b>" in an error message is not one).
_PATH = re.compile(r"(?<![\w/.\-<])(?:~?/|[A-Za-z]:[\\/])[\w.\-~]+(?:[\\/][\w.\-~]*)+")
# Keys whose string values are locations, whatever they look like.
_LOCATION_KEY = re.compile(r"(^|_)(path|dir|root|url|base_url|endpoint|host|file)($|_|s$)", re.I)


def _hide_paths(match: re.Match) -> str:
    return match.group(0) if _MID.fullmatch(match.group(0)) else HIDDEN


def text_for_reviewer(text: str) -> str:
    """Free text (an error, a stop reason) with URLs and absolute paths replaced."""
    if not text:
        return text
    return _PATH.sub(_hide_paths, _URL.sub(HIDDEN, text))


def _value_for_reviewer(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _value_for_reviewer(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value_for_reviewer(key, v) for v in value]
    if isinstance(value, str):
        if value and _LOCATION_KEY.search(key):
            return HIDDEN
        return text_for_reviewer(value)
    return value


def config_for_reviewer(config: dict) -> dict:
    """The run's resolved configuration with locations hidden: values under keys such as
    ``base_url`` or ``cache_dir``, and absolute paths or URLs anywhere (a model given as a
    local folder). Model ids from a hub, prompts and thresholds stay."""
    return _value_for_reviewer("", config)
