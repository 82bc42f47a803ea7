"""Root URLs: admin, API, pages.

Uploaded files are never served from MEDIA_URL: only through the authorized download (papers.views.paper_file
and GET /api/papers/{id}/file/)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("papers.api.urls")),
    path("", include("papers.urls")),
]
