"""ASGI entry point: HTTP through Django (health and metrics endpoints in front), WebSockets through the realtime
consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)

from paperpipeline.health import with_health_endpoints  # noqa: E402
from paperpipeline.scrape import with_metrics_endpoint  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.security import origin_validated, session_authenticated  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": with_metrics_endpoint(with_health_endpoints(django_asgi_app)),  # /metrics, /healthz, /readyz first
        "websocket": origin_validated(session_authenticated(URLRouter(websocket_urlpatterns))),
    }
)
