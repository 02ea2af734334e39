"""The Celery app. Broker and options come from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")



def route_to_declared_queue(name, args, kwargs, options, task=None, **kw):
    """The task router (CELERY_TASK_ROUTES): every task is sent to the queue it declares
    as `queue_name=` (a pipeline stage's comes from pipeline.chain). Celery's own `queue`
    task attribute is deprecated (ignored from Celery 6), hence the router."""
    if task is None:  # sent by name (app.send_task)
        task = app.tasks.get(name)
    queue = getattr(task, "queue_name", None)
    return {"queue": queue} if queue else None


app = Celery("relabel_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
