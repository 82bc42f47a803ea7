"""Root URLs: admin, API (with its OpenAPI document, and the WebSocket's AsyncAPI one), pages.

Uploaded files are never served from MEDIA_URL: only through the authorized download (papers.views.paper_file
and GET /api/papers/{id}/file/)."""

from django.contrib import admin
from django.urls import include, path

from realtime.views import AsyncApiDocumentView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/asyncapi.json", AsyncApiDocumentView.as_view(), name="asyncapi"),
    path("api/", include("papers.api.urls")),
    path("", include("papers.urls")),
]
