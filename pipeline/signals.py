"""Signals of the pipeline app, for apps downstream (curation) to react to without the
pipeline importing them."""

from django.dispatch import Signal

# Sent (with ``run``) after a run finished or an external label set was imported, once
# the transaction that finished it committed.
run_finished = Signal()
