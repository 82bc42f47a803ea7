"""WSGI entry point (the project is served by Daphne over ASGI; this is for tools that want WSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'paperpipeline.settings')

application = get_wsgi_application()
