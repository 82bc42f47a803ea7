"""API routes: JWT tokens, papers, and the OpenAPI document of them with its browsable page."""

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from .tokens import TokenObtainView, TokenRefreshRotatingView
from .views import PaperViewSet

router = DefaultRouter(trailing_slash=True)
router.register("papers", PaperViewSet, basename="paper")

urlpatterns = [
    path("token/", TokenObtainView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", TokenRefreshRotatingView.as_view(), name="token_refresh"),
    path("", include(router.urls)),
    # Readable by signed-in users only (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]), as the API itself.
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar's static files; its script is a separate same-origin request (the
    # split view), as the Content Security Policy allows no inline script. A browser signs in at /login/ first.
    # Swagger UI's stylesheet draws its icons as data: SVG images: this page alone also allows data: images.
    path(
        "schema/ui/",
        csp_update({"img-src": ["data:"]})(
            login_required(
                SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html")
            )
        ),
        name="api-schema-ui",
    ),
]
