"""API routes: JWT tokens and papers."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .tokens import TokenObtainView, TokenRefreshRotatingView
from .views import PaperViewSet

router = DefaultRouter(trailing_slash=True)
router.register("papers", PaperViewSet, basename="paper")

urlpatterns = [
    path("token/", TokenObtainView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", TokenRefreshRotatingView.as_view(), name="token_refresh"),
    path("", include(router.urls)),
]
