"""Celery application: pipeline tasks on queue "papers", periodic system tasks on queue "system"."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")

app = Celery("paperpipeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
