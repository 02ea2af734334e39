"""The model chain: the stages' write code over their declarations (see `registry`).
Importing this package attaches the built-in stages' write code to their declarations
(pipeline.stage_declarations, in chain order), then imports any stage modules named in
settings.PIPELINE_EXTRA_STAGES (env RELABEL_EXTRA_STAGES, comma-separated), which call
`register` themselves. PipelineConfig.ready imports it and adds the extra stages' status
columns."""

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
    implement,
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
    implement(_stage)

for _module in getattr(settings, "PIPELINE_EXTRA_STAGES", ()):
    importlib.import_module(_module)
