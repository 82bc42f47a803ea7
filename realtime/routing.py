"""WebSocket URL routes."""

from django.urls import path

from .consumers import PaperConsumer

websocket_urlpatterns = [path("ws/papers", PaperConsumer.as_asgi())]
