"""Page routes."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.paper_list, name="paper-list"),
    path("papers/<uuid:paper_id>/", views.paper_detail, name="paper-detail"),
    path("papers/<uuid:paper_id>/file/", views.paper_file, name="paper-file"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
