"""Every API error has one body shape: {"detail": message, "code": stable code}, plus "fields" for field errors."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from papers import selectors

pytestmark = pytest.mark.django_db

MISSING = "/api/papers/00000000-0000-0000-0000-000000000000/"


def assert_error(response, status: int, code: str, fields: set[str] | None = None) -> dict:
    """The response is an error of this status and code, in the one shape."""
    body = response.json()
    assert response.status_code == status, body
    assert set(body) == ({"detail", "code", "fields"} if fields else {"detail", "code"}), body
    assert isinstance(body["detail"], str) and body["detail"] and body["code"] == code
    if fields:
        assert set(body["fields"]) == fields
        assert all(isinstance(m, str) for messages in body["fields"].values() for m in messages)
    return body


@pytest.fixture
def queued(api, monkeypatch):
    monkeypatch.setattr("papers.tasks.process_paper.apply_async", lambda **kw: None)
    upload = SimpleUploadedFile("n.txt", b"Some text about NovaNet.", content_type="text/plain")
    return api.post("/api/papers/", {"file": upload}, format="multipart").json()["id"]


def test_unauthenticated(api):
    assert_error(APIClient().get("/api/papers/"), 401, "not_authenticated")


def test_an_invalid_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error(client.get("/api/papers/"), 401, "token_not_valid")


def test_not_found_alike_for_missing_and_foreign(api, queued, other_user):
    assert_error(api.get(MISSING), 404, "not_found")
    bob = APIClient()
    bob.force_authenticate(other_user)
    assert_error(bob.get(f"/api/papers/{queued}/"), 404, "not_found")


def test_method_not_allowed(api):
    assert_error(api.put("/api/papers/", {}, format="json"), 405, "method_not_allowed")


def test_unsupported_media_type(api):
    response = api.generic("POST", "/api/papers/", "x", content_type="application/x-unknown")
    assert_error(response, 415, "unsupported_media_type")


def test_a_refused_upload_names_the_field(api):
    upload = SimpleUploadedFile("n.pdf", b"plain text", content_type="application/pdf")
    body = assert_error(api.post("/api/papers/", {"file": upload}, format="multipart"), 400, "extension_mismatch",
                        {"file"})
    assert body["fields"]["file"] == [body["detail"]]


def test_a_serializer_error(api):
    assert_error(api.post("/api/papers/", {"title": "x" * 301}, format="multipart"), 400, "required", {"file", "title"})


def test_an_invalid_since(api, queued):
    assert_error(api.get(f"/api/papers/{queued}/events/?since=-1"), 400, "invalid_since", {"since"})


def test_a_conflict_with_the_papers_state(api, queued):
    body = assert_error(api.post(f"/api/papers/{queued}/reprocess/"), 409, "already_active")
    assert body["detail"] == "The paper is already being processed."


def test_a_refusal_no_view_translated_is_a_400(api, queued, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError("No.", code="refused")

    monkeypatch.setattr(selectors, "entity_list", refuse)
    assert_error(api.get(f"/api/papers/{queued}/entities/"), 400, "refused")


def test_a_bad_refresh_token():
    assert_error(APIClient().post("/api/token/refresh/", {"refresh": "x"}, format="json"), 401, "token_not_valid")
