"""Root URLs: admin, API (with its OpenAPI document, and the WebSocket's AsyncAPI one), pages.

Uploaded files are never served from MEDIA_URL: only through the authorized download (papers.views.paper_file
and GET /api/papers/{id}/file/)."""

from django.contrib import admin
from django.urls import include, path

from realtime.views import AsyncApiDocumentView, paper_stream, papers_stream

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/asyncapi.json", AsyncApiDocumentView.as_view(), name="asyncapi"),
    # The server-sent event streams (realtime/sse.py), ahead of the API's router, which would read "stream" as an id.
    path("api/papers/stream/", papers_stream, name="papers-stream"),
    path("api/papers/<uuid:paper_id>/stream/", paper_stream, name="paper-stream"),
    path("api/", include("papers.api.urls")),
    path("", include("papers.urls")),
]
