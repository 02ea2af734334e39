"""The Celery app. Broker and options come from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")

app = Celery("relabel_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
