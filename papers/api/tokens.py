"""JWT endpoints: SimpleJWT's views with brute-force lockout answers and password-change revocation of refresh."""

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .errors import error_response
from .serializers import ErrorSerializer, TokenPairSerializer


def locked_out_response() -> Response:
    """429 for a client django-axes locked out (by account or by address), with when to try again."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    detail = f"Too many failed login attempts; try again in {seconds} seconds."
    return error_response(detail, "locked_out", status.HTTP_429_TOO_MANY_REQUESTS, {"Retry-After": str(seconds)})


class BoundedTokenObtainPairSerializer(TokenObtainPairSerializer):
    """SimpleJWT's login serializer with a username no longer than the user model allows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        max_length = get_user_model()._meta.get_field(self.username_field).max_length
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=max_length)


class TokenObtainView(TokenObtainPairView):
    """POST /api/token/: a client django-axes locked out gets 429 `locked_out`, even with the right password."""

    serializer_class = BoundedTokenObtainPairSerializer

    @extend_schema(
        summary="Log in: get an access and a refresh token",
        responses={
            200: TokenPairSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A missing or over-long field."),
            401: OpenApiResponse(ErrorSerializer, description="Wrong credentials or an inactive account."),
            429: OpenApiResponse(ErrorSerializer, description="Locked out (`locked_out`, with Retry-After)."),
        },
    )
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            # axes' backend and its failure handler flag the request they were given: this DRF request.
            if getattr(request, "axes_locked_out", False):
                return locked_out_response()
            raise


class RevocableTokenRefreshSerializer(TokenRefreshSerializer):
    """SimpleJWT's refresh, which also refuses a refresh token minted before the password changed (SimpleJWT
    checks that claim on access tokens only)."""

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])  # signature, expiry and blacklist
        user = get_user_model()._default_manager.filter(
            **{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)}
        ).first()
        if user is None:
            raise InvalidToken("No active account found for the given token.", code="no_active_account")
        if refresh.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise InvalidToken("The user's password has been changed.", code="password_changed")
        return super().validate(attrs)


class TokenRefreshRotatingView(TokenRefreshView):
    """POST /api/token/refresh/: a new access and refresh token; the old refresh token is blacklisted."""

    serializer_class = RevocableTokenRefreshSerializer

    @extend_schema(
        summary="Refresh: a new access and refresh token; the refresh token sent is blacklisted",
        responses={
            200: TokenPairSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A missing field."),
            401: OpenApiResponse(ErrorSerializer, description="An invalid, expired, blacklisted or revoked token."),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
