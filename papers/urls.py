"""Page routes."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.paper_list, name="paper-list"),
    path("library/", views.paper_library, name="paper-library"),
    path("papers/rows/", views.paper_rows, name="paper-rows"),
    path("papers/<uuid:paper_id>/", views.paper_detail, name="paper-detail"),
    path("papers/<uuid:paper_id>/file/", views.paper_file, name="paper-file"),
    path("papers/<uuid:paper_id>/row/", views.paper_row, name="paper-row"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
