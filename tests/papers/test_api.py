"""API: tokens, uploads with validation, visibility, extracted data and the event log."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from papers.models import Paper, PaperEvent, PaperStatus
from tests.conftest import make_pdf, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]


def test_token_pair_and_refresh(user):
    client = APIClient()
    pair = client.post("/api/token/", {"username": "alice", "password": "pw-alice-123"}, format="json")
    assert pair.status_code == 200 and {"access", "refresh"} <= set(pair.data)
    refreshed = client.post("/api/token/refresh/", {"refresh": pair.data["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.data
    assert client.post("/api/token/", {"username": "alice", "password": "wrong"}, format="json").status_code == 401


def test_anonymous_is_refused():
    assert APIClient().get("/api/papers/").status_code == 401


def test_upload_pdf_queues_it_and_sends_the_task_after_commit(
    api, user, pdf_upload, no_celery_send, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/papers/", {"file": pdf_upload, "title": "NovaNet"}, format="multipart")
    assert response.status_code == 201, response.data
    paper = Paper.objects.get(pk=response.data["id"])
    assert (paper.owner, paper.title, paper.status) == (user, "NovaNet", "queued")
    assert paper.content_type == "application/pdf"
    assert response.data["status"] == "queued"
    [sent] = no_celery_send
    assert sent["args"] == [str(paper.pk)] and sent["task_id"] == paper.task_id
    [event] = PaperEvent.objects.filter(paper=paper)
    assert (event.payload["old_status"], event.payload["new_status"]) == ("uploaded", "queued")


def test_upload_text_file_without_title_uses_the_file_name(api):
    upload = SimpleUploadedFile("notes.txt", "Plain text with ünïcode".encode(), content_type="text/plain")
    response = api.post("/api/papers/", {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert response.data["title"] == "notes" and response.data["content_type"] == "text/plain"


@pytest.mark.parametrize(
    "upload, code",
    [
        (SimpleUploadedFile("empty.pdf", b"", content_type="application/pdf"), "empty"),  # DRF's FileField
        (SimpleUploadedFile("image.png", b"\x89PNG\r\n\x1a\n\x00\x00binary"), "unsupported_type"),
        (SimpleUploadedFile("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1")), "unsupported_type"),
    ],
)
def test_bad_uploads_get_a_clear_400_and_store_nothing(api, upload, code):
    response = api.post("/api/papers/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.data == {"detail": response.data["fields"]["file"][0], "code": code,
                             "fields": {"file": [response.data["detail"]]}}
    assert Paper.objects.count() == 0


def test_missing_file_is_a_400(api):
    response = api.post("/api/papers/", {"title": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.data["code"] == "required" and list(response.data["fields"]) == ["file"]


@override_settings(PAPER_MAX_UPLOAD_BYTES=1000)
def test_too_large_upload_is_a_400(api):
    upload = SimpleUploadedFile("big.pdf", make_pdf("x " * 2000), content_type="application/pdf")
    response = api.post("/api/papers/", {"file": upload}, format="multipart")
    assert response.status_code == 400 and response.data["code"] == "file_too_large"
    assert "limit is 1000 bytes" in response.data["detail"] and response.data["fields"]["file"] == [
        response.data["detail"]
    ]


def test_users_see_only_their_papers_and_staff_see_all(api, user, other_user, staff_user, text_upload):
    mine = api.post("/api/papers/", {"file": text_upload}, format="multipart").data["id"]
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(other_user)}")
    assert bob.get("/api/papers/").data["results"] == []
    for suffix in ("", "entities/", "relationships/", "events/"):
        assert bob.get(f"/api/papers/{mine}/{suffix}").status_code == 404
    assert bob.get("/api/papers/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert [p["id"] for p in api.get("/api/papers/").data["results"]] == [mine]
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(staff_user)}")
    assert [p["id"] for p in staff.get("/api/papers/").data["results"]] == [mine]


def test_events_since_returns_the_logged_payloads(api, text_upload):
    paper_id = api.post("/api/papers/", {"file": text_upload}, format="multipart").data["id"]
    paper = Paper.objects.get(pk=paper_id)
    paper.status = PaperStatus.PROCESSING
    paper.save()
    everything = api.get(f"/api/papers/{paper_id}/events/").data
    assert [e["seq"] for e in everything["events"]] == [1, 2] and everything["last_seq"] == 2
    later = api.get(f"/api/papers/{paper_id}/events/?since=1").data
    assert later["events"] == everything["events"][1:]
    assert later["events"][0] == PaperEvent.objects.get(paper=paper, seq=2).payload
    for bad in ("-1", "²", "1" * 25, "x"):  # negative, a Unicode digit, past bigint, not a number
        assert api.get(f"/api/papers/{paper_id}/events/?since={bad}").status_code == 400


def test_cancel_and_reprocess(api, text_upload):
    paper_id = api.post("/api/papers/", {"file": text_upload}, format="multipart").data["id"]
    assert api.post(f"/api/papers/{paper_id}/reprocess/").status_code == 409  # still queued
    cancelled = api.post(f"/api/papers/{paper_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.data["status"] == "cancelled"
    assert api.post(f"/api/papers/{paper_id}/cancel/").status_code == 409
    again = api.post(f"/api/papers/{paper_id}/reprocess/")
    assert again.status_code == 200 and again.data["status"] == "queued"
    statuses = [e.payload["new_status"] for e in PaperEvent.objects.filter(paper_id=paper_id).order_by("seq")]
    assert statuses == ["queued", "cancelled", "queued"]


def test_delete_removes_the_paper_its_log_and_its_file(api, text_upload, django_capture_on_commit_callbacks):
    paper_id = api.post("/api/papers/", {"file": text_upload}, format="multipart").data["id"]
    paper = Paper.objects.get(pk=paper_id)
    storage, name = paper.file.storage, paper.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/papers/{paper_id}/").status_code == 204
    assert not Paper.objects.filter(pk=paper_id).exists()
    assert not PaperEvent.objects.filter(paper_id=paper_id).exists()
    assert not storage.exists(name)
