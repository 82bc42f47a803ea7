"""WebSocket URL routes."""

from django.urls import path

from .consumers import PaperConsumer


def paper_consumer(scope, receive, send):
    """PaperConsumer.as_asgi(), minus its wrapping coroutine: the new consumer's own coroutine is the application,
    so no extra frame stays alive for each connection's life."""
    return PaperConsumer()(scope, receive, send)


paper_consumer._asgi_single_callable = True  # a plain function returning the ASGI coroutine (asgiref's marker)


websocket_urlpatterns = [path("ws/papers", paper_consumer)]
