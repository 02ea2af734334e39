"""The Celery queues of the tasks that are not pipeline stages (a stage declares its queue
in pipeline.chain). With the stages' queues, these are every queue a worker must listen
on (pipeline.worker.all_queues; docker/compose.yml's -Q lists are checked against it)."""

from enum import StrEnum


class CeleryQueue(StrEnum):
    DEFAULT = "celery"  # Celery's default: short housekeeping tasks (queue refresh, recovery)
    EXPORT = "export"  # long SQL jobs: export files, audit snapshots
    # A search index build would get its own queue here (INDEX = "index").
