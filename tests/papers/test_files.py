"""Uploaded files: accepted names, random storage names, the authorized download, and deletion on commit."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from papers import services
from papers.models import Paper
from tests.conftest import SAMPLE_TEXT, make_pdf, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]

XSS = b"<html><body><script>fetch('/api/papers/').then(r => r.text()).then(alert)</script></body></html>"
STORED_NAME = re.compile(r"papers/[0-9a-f]{32}\.(pdf|txt)")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(api, name: str, content: bytes):
    return api.post("/api/papers/", {"file": SimpleUploadedFile(name, content)}, format="multipart")


@pytest.mark.parametrize(
    "name, content, code",
    [
        ("related-work.html", XSS, "unsupported_type"),
        ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "unsupported_type"),
        ("notes", SAMPLE_TEXT.encode(), "unsupported_type"),
        ("paper.pdf.html", make_pdf(SAMPLE_TEXT), "unsupported_type"),
        ("paper.pdf", SAMPLE_TEXT.encode(), "extension_mismatch"),
        ("notes.txt", make_pdf(SAMPLE_TEXT), "extension_mismatch"),
    ],
)
def test_only_pdf_and_txt_names_matching_their_content_are_accepted(api, name, content, code):
    response = upload(api, name, content)
    assert response.status_code == 400, response.data
    assert response.data["code"] == code and response.data["fields"]["file"] == [response.data["detail"]]
    assert not Paper.objects.exists()


def test_upper_case_extensions_are_accepted(api):
    assert upload(api, "NOTES.TXT", SAMPLE_TEXT.encode()).status_code == 201
    assert upload(api, "Paper.Pdf", make_pdf(SAMPLE_TEXT)).status_code == 201


def test_the_upload_page_shows_the_refusal_and_stores_nothing(user):
    page = logged_in(user)
    response = page.post("/", {"file": SimpleUploadedFile("related-work.html", XSS)}, follow=True)
    assert response.status_code == 200
    assert b"related-work.html: Only .pdf and .txt files are accepted" in response.content
    assert not Paper.objects.exists()


def test_the_admin_refuses_a_mismatched_extension_with_a_form_error(admin_user, user):
    response = logged_in(admin_user).post(
        "/admin/papers/paper/add/",
        {"title": "t", "owner": user.pk, "file": SimpleUploadedFile("paper.pdf", SAMPLE_TEXT.encode())},
    )
    assert response.status_code == 200
    assert b"The file is named .pdf but its content is plain text." in response.content
    assert not Paper.objects.exists()


def test_stored_names_are_random_and_keep_only_the_sniffed_extension(api):
    first = Paper.objects.get(pk=upload(api, "novanet.txt", SAMPLE_TEXT.encode()).data["id"])
    second = Paper.objects.get(pk=upload(api, "novanet.txt", SAMPLE_TEXT.encode()).data["id"])
    pdf = Paper.objects.get(pk=upload(api, "novanet.pdf", make_pdf(SAMPLE_TEXT)).data["id"])
    for paper in (first, second, pdf):
        assert STORED_NAME.fullmatch(paper.file.name), paper.file.name
        assert "novanet" not in paper.file.name and paper.original_filename.startswith("novanet.")
    assert first.file.name != second.file.name
    assert pdf.file.name.endswith(".pdf") and first.file.name.endswith(".txt")


def test_the_owner_downloads_the_file_as_an_attachment_with_a_safe_type(api):
    paper_id = upload(api, "Nova Net \"v2\".txt", SAMPLE_TEXT.encode()).data["id"]
    response = api.get(f"/api/papers/{paper_id}/file/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == SAMPLE_TEXT.encode()
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="Nova_Net_v2.txt"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"


def test_a_pdf_downloads_as_a_pdf_whatever_the_accept_header(api):
    content = make_pdf(SAMPLE_TEXT)
    paper_id = upload(api, "novanet.pdf", content).data["id"]
    response = api.get(f"/api/papers/{paper_id}/file/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="novanet.pdf"'
    assert b"".join(response.streaming_content) == content


def test_an_old_paper_stored_under_an_html_name_still_downloads_as_text(user):
    """Files stored before random names keep their paths; the download never serves them as HTML."""
    name = default_storage.save("papers/2026/11/related-work.html", ContentFile(XSS))
    paper = Paper.objects.create(
        owner=user, file=name, original_filename="related-work.html", content_type="text/plain"
    )
    response = client_for(user).get(f"/api/papers/{paper.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="related-work.txt"'


def test_others_and_anonymous_cannot_read_the_file(api, other_user, staff_user):
    paper_id = upload(api, "secret.txt", XSS.replace(b"<", b"&lt;") + b" secret").data["id"]
    missing = "00000000-0000-0000-0000-000000000000"
    bob = client_for(other_user)
    foreign, absent = bob.get(f"/api/papers/{paper_id}/file/"), bob.get(f"/api/papers/{missing}/file/")
    assert foreign.status_code == absent.status_code == 404
    assert foreign.data == absent.data
    assert APIClient().get(f"/api/papers/{paper_id}/file/").status_code == 401
    assert client_for(staff_user).get(f"/api/papers/{paper_id}/file/").status_code == 200


def test_the_page_download_checks_visibility_too(user, other_user):
    paper = services.paper_create(owner=user, file=SimpleUploadedFile("novanet.txt", SAMPLE_TEXT.encode()))
    url = f"/papers/{paper.pk}/file/"
    response = logged_in(user).get(url)
    assert response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="novanet.txt"'
    assert logged_in(other_user).get(url).status_code == 404
    assert logged_in(other_user).get("/papers/00000000-0000-0000-0000-000000000000/file/").status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


@pytest.fixture
def debug_urls(settings):
    """The root URLconf as DEBUG builds it (make run's development mode)."""
    import importlib

    from django.urls import clear_url_caches

    import paperpipeline.urls

    settings.DEBUG = True
    importlib.reload(paperpipeline.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(paperpipeline.urls)
    clear_url_caches()


def test_media_files_are_not_served_at_any_url_even_with_debug(api, debug_urls):
    """No public media route: the stored path answers 404, to anonymous clients and to the owner alike."""
    paper = Paper.objects.get(pk=upload(api, "novanet.txt", SAMPLE_TEXT.encode()).data["id"])
    assert paper.file.url.startswith("/media/papers/")
    for client in (Client(), logged_in(paper.owner)):
        assert client.get(paper.file.url).status_code == 404


def test_the_progress_page_and_the_admin_link_the_download_not_the_media_url(user, admin_user):
    paper = services.paper_create(owner=user, file=SimpleUploadedFile("novanet.txt", SAMPLE_TEXT.encode()))
    download = f'href="/papers/{paper.pk}/file/"'.encode()
    detail = logged_in(user).get(f"/papers/{paper.pk}/")
    change = logged_in(admin_user).get(f"/admin/papers/paper/{paper.pk}/change/")
    for page in (detail, change):
        assert page.status_code == 200
        assert download in page.content
        assert paper.file.name.encode() not in page.content


def test_the_file_goes_when_the_owner_is_deleted_once_committed(api, user, django_capture_on_commit_callbacks):
    paper = Paper.objects.get(pk=upload(api, "novanet.txt", SAMPLE_TEXT.encode()).data["id"])
    storage, name = paper.file.storage, paper.file.name
    with django_capture_on_commit_callbacks(execute=False) as pending:
        user.delete()  # the admin's way: the papers go by cascade
    assert storage.exists(name), "deleted before the deletion committed"
    for callback in pending:
        callback()
    assert not Paper.objects.exists() and not storage.exists(name)


def test_the_file_goes_on_a_queryset_delete_and_stays_on_rollback(api, django_capture_on_commit_callbacks):
    from django.db import transaction

    paper = Paper.objects.get(pk=upload(api, "novanet.txt", SAMPLE_TEXT.encode()).data["id"])
    storage, name = paper.file.storage, paper.file.name
    with django_capture_on_commit_callbacks(execute=True) as rolled_back:
        with pytest.raises(RuntimeError), transaction.atomic():
            Paper.objects.filter(pk=paper.pk).delete()
            raise RuntimeError("roll back")
    assert not rolled_back and storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        Paper.objects.filter(pk=paper.pk).delete()
    assert not storage.exists(name)
