"""Model backends: the Protocols in .base and the adapters that implement them.

Adapters import torch/transformers/openai lazily (module import is cheap); build them
through `build_backend(spec)` from .registry.
"""

from .base import AudioChat, BackendError, ClapEmbedder, TextChat, TextEmbedder
from .registry import ADAPTERS, build_backend, clear_backend_cache

__all__ = [
    "ADAPTERS",
    "AudioChat",
    "BackendError",
    "ClapEmbedder",
    "TextChat",
    "TextEmbedder",
    "build_backend",
    "clear_backend_cache",
]
