"""Shared fixtures: users, JWTs, API clients, small generated papers, and WebSocket communicators."""

import io
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

# Real PDFs kept in the repository (tests/data/papers/README.md: source and MIT licence).
PAPERS_DIR = Path(__file__).resolve().parent / "data" / "papers"

SAMPLE_TEXT = (
    "NovaNet: Scalable Transformers for Reading Comprehension\n\n"
    "We propose NovaNet, a model pre-trained on Wikipedia and BookCorpus. "
    "NovaNet is evaluated on SQuAD and GLUE, where it outperforms BERT and RoBERTa. "
    "NovaNet uses self-attention and achieves 91.2 F1 and 88.0 accuracy on MNLI.\n"
)


def papers_dir() -> Path:
    """The repository's folder of real PDFs."""
    assert PAPERS_DIR.is_dir(), f"real papers not found at {PAPERS_DIR}"
    return PAPERS_DIR


def make_pdf(text: str) -> bytes:
    """A small real PDF with the given text, one line per text line."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    y = 800
    for line in text.splitlines():
        for chunk in [line[i : i + 90] for i in range(0, max(len(line), 1), 90)]:
            pdf.drawString(40, y, chunk)
            y -= 14
            if y < 60:
                pdf.showPage()
                y = 800
    pdf.save()
    return buffer.getvalue()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-123")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(username="carol", password="pw-carol-123", is_staff=True)


def token_for(user) -> str:
    """A SimpleJWT access token for a user."""
    return str(AccessToken.for_user(user))


@pytest.fixture
def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


@pytest.fixture
def text_upload():
    return SimpleUploadedFile("novanet.txt", SAMPLE_TEXT.encode(), content_type="text/plain")


@pytest.fixture
def pdf_upload():
    return SimpleUploadedFile("novanet.pdf", make_pdf(SAMPLE_TEXT), content_type="application/pdf")


def communicator(
    headers: list[tuple[bytes, bytes]] | None = None, client: tuple[str, int] | None = None
) -> WebsocketCommunicator:
    """A WebSocket client through the full ASGI stack (origin check, session auth, routing), addressed as a
    browser on http://localhost addresses it (Host header) unless the headers say otherwise."""
    from paperpipeline.asgi import application

    headers = headers or [(b"origin", b"http://localhost")]
    if not any(name == b"host" for name, _ in headers):
        headers = [(b"host", b"localhost"), *headers]
    ws = WebsocketCommunicator(application, "/ws/papers", headers=headers)
    if client is not None:
        ws.scope["client"] = list(client)  # the peer address Daphne puts in the scope
    return ws


@pytest.fixture(scope="session", autouse=True)
def flush_retried_after_a_deadlock():
    """Retry a transactional test's TRUNCATE of every table when PostgreSQL picked it as a deadlock's victim.

    End-to-end and browser tests share the test database with live workers, which may still be finishing a
    paper (a transaction holding a paper's row, then reading its events) when the test's teardown truncates
    the tables; PostgreSQL then aborts one side. The flush runs in a transaction of its own, so trying it
    again once the other side finished is safe."""
    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations

    flush = BaseDatabaseOperations.execute_sql_flush

    def flush_retrying(self, sql_list):
        for attempt in range(FLUSH_ATTEMPTS):
            try:
                return flush(self, sql_list)
            except OperationalError as exc:
                if "deadlock detected" not in str(exc) or attempt == FLUSH_ATTEMPTS - 1:
                    raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", flush_retrying)
        yield


FLUSH_ATTEMPTS = 5


def pytest_collection_modifyitems(config, items):
    """Run end-to-end tests last, so their live processes never overlap the faster levels."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
