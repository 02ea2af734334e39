"""The model chain: the ordered registry of stages (see `registry`). Importing this
package registers the built-in stages in chain order (BUILTIN), then any stage modules
named in settings.PIPELINE_EXTRA_STAGES (env RELABEL_EXTRA_STAGES, comma-separated),
which call `register` themselves."""

import importlib

from django.conf import settings

from .caption import CaptionStage
from .filter import FilterStage
from .match import MatchStage
from .predict import PredictStage
from .registry import (  # noqa: F401  (the registry's interface)
    Item,
    Stage,
    first,
    following,
    get,
    last,
    names,
    previous,
    queues,
    register,
    stages,
    status_fields,
    unregister,
)

BUILTIN = (CaptionStage, PredictStage, MatchStage, FilterStage)

for _stage in BUILTIN:
    if _stage.name not in names():
        register(_stage)

for _module in getattr(settings, "PIPELINE_EXTRA_STAGES", ()):
    importlib.import_module(_module)
