#!/usr/bin/env bash
# Run the web server (gunicorn) and one Celery worker on all queues until Ctrl-C.
set -euo pipefail
HOST=${1:-127.0.0.1}; PORT=${2:-8000}
PY=.venv/bin
$PY/python manage.py collectstatic --noinput -v 0
# Every queue the project sends to, from the stage registry and relabel_app.queues.
QUEUES=$(DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-relabel_app.settings.dev} $PY/python -c "import django; django.setup(); from pipeline.worker import all_queues; print(','.join(all_queues()))")
$PY/celery -A relabel_app worker -Q "$QUEUES" -c 1 -l warning &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM
echo
echo "  AudioSet relabeling studio: http://$HOST:$PORT/"
echo "  (Ctrl-C stops the web server and the worker; 'make stop-db' stops the embedded database)"
echo
$PY/gunicorn relabel_app.wsgi -b "$HOST:$PORT" -w 2 --threads 4 --access-logfile - --log-level warning
