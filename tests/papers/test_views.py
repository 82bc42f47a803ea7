"""Pages: the paper list's row fragments, current to the seq they were read at, for the owner only."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from papers import services
from papers.models import PaperEvent, PaperStatus
from tests.conftest import make_pdf

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]


@pytest.fixture
def paper(user):
    upload = SimpleUploadedFile("novanet.pdf", make_pdf("NovaNet text"), content_type="application/pdf")
    paper = services.paper_create(owner=user, file=upload, title="NovaNet <b>")
    paper.status = PaperStatus.PROCESSING
    paper.save()
    return paper


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def newest_seq(paper) -> int:
    return PaperEvent.objects.filter(paper=paper).order_by("-seq").first().seq


def row_attrs(html: str) -> list[dict[str, str]]:
    """The attributes of every <tr> of a fragment."""
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in re.findall(r"<tr [^>]*>", html)]


def test_a_row_says_the_seq_its_state_is_current_to(user, paper):
    response = logged_in(user).get(f"/papers/{paper.pk}/row/")
    assert response.status_code == 200
    [attrs] = row_attrs(response.content.decode())
    assert (attrs["data-paper-id"], attrs["data-seq"]) == (str(paper.pk), str(newest_seq(paper)))
    assert 'data-field="status">processing<' in response.content.decode()
    assert "NovaNet &lt;b&gt;" in response.content.decode()  # titles are escaped


def test_rows_lists_every_visible_paper_with_its_seq(user, other_user, paper):
    rows = row_attrs(logged_in(user).get("/papers/rows/").content.decode())
    assert [(a["data-paper-id"], a["data-seq"]) for a in rows] == [(str(paper.pk), str(newest_seq(paper)))]
    assert row_attrs(logged_in(other_user).get("/papers/rows/").content.decode()) == []


def test_another_users_paper_is_not_found_and_anonymous_is_sent_to_log_in(other_user, paper):
    assert logged_in(other_user).get(f"/papers/{paper.pk}/row/").status_code == 404
    assert Client().get(f"/papers/{paper.pk}/row/").status_code == 302
    assert Client().get("/papers/rows/").status_code == 302
    assert logged_in(other_user).post("/papers/rows/").status_code == 405
