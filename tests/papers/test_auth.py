"""Login throttling (per account and per address) on /api/token/ and /login/, refresh-token rotation, and
revocation of every token on a password change."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

pytestmark = pytest.mark.django_db

GOOD = {"username": "alice", "password": "pw-alice-123"}
BAD = {"username": "alice", "password": "wrong"}


def token(credentials: dict, address: str = "203.0.113.1"):
    return APIClient().post("/api/token/", credentials, format="json", REMOTE_ADDR=address)


def fail(times: int, credentials: dict = BAD, address: str = "203.0.113.1") -> list[int]:
    return [token(credentials, address).status_code for _ in range(times)]


def assert_locked_out(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "locked_out" and "try again in 900 seconds" in response.json()["detail"]
    assert set(response.json()) == {"detail", "code"}
    assert response["Retry-After"] == "900"


def test_after_the_failure_limit_even_the_right_password_is_refused(user):
    assert fail(4) == [401] * 4
    assert_locked_out(token(BAD))  # the fifth failure locks
    for _ in range(40):
        assert token(BAD).status_code == 429
    assert_locked_out(token(GOOD))


def test_one_address_is_locked_for_every_account(user, other_user):
    for name in ("x1", "x2", "x3", "x4", "x5"):  # guessing accounts: none of them reaches the limit alone
        token({"username": name, "password": "guess"})
    assert_locked_out(token({"username": "bob", "password": "pw-bob-123"}))
    assert token({"username": "bob", "password": "pw-bob-123"}, address="198.51.100.9").status_code == 200


def test_one_account_is_locked_from_every_address(user, other_user):
    for i in range(5):  # a distributed guess: one try per address
        token(BAD, address=f"192.0.2.{i}")
    assert_locked_out(token(GOOD, address="198.51.100.7"))
    assert token({"username": "bob", "password": "pw-bob-123"}, address="198.51.100.7").status_code == 200


def test_the_lock_lifts_after_the_cool_off(user, settings):
    fail(5)
    assert_locked_out(token(GOOD))
    # The cool-off passes: every recorded failure now lies one cool-off in the past.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert token(GOOD).status_code == 200


def test_an_overlong_username_is_a_clear_400(user):
    response = token({"username": "a" * 10_000, "password": "x"})
    assert response.status_code == 400 and "username" in response.json()["fields"]


def login(client: Client, password: str):
    return client.post("/login/", {"username": "alice", "password": password}, REMOTE_ADDR="203.0.113.2")


def test_the_login_page_locks_out_with_a_readable_page_and_refuses_the_right_password(user):
    browser = Client()
    assert [login(browser, "wrong").status_code for _ in range(4)] == [200] * 4  # the form again, with its error
    for password in ("wrong", "pw-alice-123"):
        locked = login(browser, password)
        assert locked.status_code == 429
        assert b"Too many failed logins" in locked.content and b"0:15:00" in locked.content
    assert "_auth_user_id" not in browser.session
    assert browser.get("/").status_code == 302, "still not logged in"


# --- refresh rotation and revocation ---


def test_a_refresh_token_is_rotated_and_the_used_one_refused(user):
    client = APIClient()
    pair = token(GOOD).json()
    renewed = client.post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert renewed.status_code == 200 and renewed.json()["refresh"] != pair["refresh"]
    replayed = client.post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert replayed.status_code == 401 and replayed.json()["code"] == "token_not_valid"
    again = client.post("/api/token/refresh/", {"refresh": renewed.json()["refresh"]}, format="json")
    assert again.status_code == 200


def test_a_password_change_revokes_access_and_refresh_tokens(user):
    pair, second = token(GOOD).json(), token(GOOD).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.get("/api/papers/").status_code == 200
    user.set_password("a-new-pw-456")
    user.save()
    refused = client.get("/api/papers/")
    assert refused.status_code == 401 and refused.json()["code"] == "password_changed"
    for refresh in (pair["refresh"], second["refresh"]):
        response = APIClient().post("/api/token/refresh/", {"refresh": refresh}, format="json")
        assert response.status_code == 401 and response.json()["code"] in ("password_changed", "token_not_valid")
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == 2 and not outstanding.filter(blacklistedtoken__isnull=True).exists()
    fresh = token({"username": "alice", "password": "a-new-pw-456"})
    assert fresh.status_code == 200


def test_a_refresh_token_minted_before_the_password_change_is_refused_by_its_claim(user):
    """Even a refresh token the blacklist never saw (issued elsewhere) carries the old password's digest."""
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken.for_user(user)
    OutstandingToken.objects.filter(jti=refresh["jti"]).delete()
    user.set_password("a-new-pw-456")
    user.save()
    response = APIClient().post("/api/token/refresh/", {"refresh": str(refresh)}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "password_changed"


def test_saving_a_user_without_changing_the_password_revokes_nothing(user):
    pair = token(GOOD).json()
    user.first_name = "Alice"
    user.save()
    assert APIClient().post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 200
