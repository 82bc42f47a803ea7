"""Admin: list and change pages, upload through the add form, and lifecycle actions that log events."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from papers.models import Paper, PaperEvent
from tests.conftest import SAMPLE_TEXT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]


@pytest.fixture
def admin_client_(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def add_paper(client, owner, content: bytes | None = None, name="nova.txt"):
    content = SAMPLE_TEXT.encode() if content is None else content
    return client.post(
        "/admin/papers/paper/add/",
        {"title": "From admin", "owner": owner.pk, "file": SimpleUploadedFile(name, content)},
    )


def test_add_through_admin_validates_and_queues_like_the_api(admin_client_, user):
    response = add_paper(admin_client_, user)
    assert response.status_code == 302, response.content[:2000]
    paper = Paper.objects.get()
    assert (paper.owner, paper.title, paper.status) == (user, "From admin", "queued")
    assert PaperEvent.objects.get(paper=paper).payload["new_status"] == "queued"


def test_admin_rejects_an_unsupported_file_with_a_form_error(admin_client_, user):
    response = add_paper(admin_client_, user, content=b"\x89PNG\r\n\x1a\nxx\x00", name="x.png")
    assert response.status_code == 200
    assert b"Only PDF files and UTF-8 plain-text files are accepted." in response.content
    assert not Paper.objects.exists()


def test_changelist_search_filter_and_change_page(admin_client_, user):
    add_paper(admin_client_, user)
    paper = Paper.objects.get()
    page = admin_client_.get("/admin/papers/paper/?status__exact=queued&q=admin")
    assert page.status_code == 200 and b"From admin" in page.content
    assert admin_client_.get(f"/admin/papers/paper/{paper.pk}/change/").status_code == 200


def test_cancel_and_reprocess_actions_log_status_events(admin_client_, user):
    add_paper(admin_client_, user)
    paper = Paper.objects.get()
    for action in ("cancel", "reprocess"):
        response = admin_client_.post(
            "/admin/papers/paper/", {"action": action, "_selected_action": [str(paper.pk)]}, follow=True
        )
        assert response.status_code == 200
    statuses = [e.payload["new_status"] for e in PaperEvent.objects.filter(paper=paper).order_by("seq")]
    assert statuses == ["queued", "cancelled", "queued"]


def test_action_on_a_paper_in_the_wrong_state_warns_and_changes_nothing(admin_client_, user):
    add_paper(admin_client_, user)
    paper = Paper.objects.get()
    response = admin_client_.post(
        "/admin/papers/paper/", {"action": "reprocess", "_selected_action": [str(paper.pk)]}, follow=True
    )
    assert b"already being processed" in response.content
    assert PaperEvent.objects.filter(paper=paper).count() == 1
