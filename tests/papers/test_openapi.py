"""The OpenAPI document of the REST API: generated without a warning, valid, read by signed-in users only, browsable
from locally served files, and the API's real answers satisfy it."""

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from papers import tasks
from papers.models import Paper
from realtime.events import PAPER_EVENT_TYPES
from realtime.openapi import component_name
from realtime.schemas import WIRE_SCHEMAS
from tests.conftest import SAMPLE_TEXT, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]

ROOT = Path(__file__).resolve().parents[2]


def test_manage_spectacular_validates_with_no_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    assert yaml.safe_load(out.read_text())["openapi"] == "3.1.0"


def test_only_signed_in_users_read_the_schema(user):
    anonymous = APIClient().get("/api/schema/")
    # The one error body, in the format asked for (YAML unless ?format=json or Accept says JSON).
    assert anonymous.status_code == 401 and yaml.safe_load(anonymous.content)["code"] == "not_authenticated"
    jwt = APIClient(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    assert yaml.safe_load(jwt.get("/api/schema/").content)["info"]["title"] == "Paper Pipeline API"
    assert jwt.get("/api/schema/?format=json").json()["openapi"] == "3.1.0"


def test_the_browsable_page_needs_a_session_and_loads_only_same_origin_files(user):
    anonymous = Client().get("/api/schema/ui/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/?next=/api/schema/ui/")
    client = Client()
    client.force_login(user)
    page = client.get("/api/schema/ui/")
    html = page.content.decode()
    assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]
    assert "<style" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html), "nothing inline"
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/") and not source.startswith("//") for source in sources), sources
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    script = client.get("/api/schema/ui/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    body = script.content.decode()
    assert '"/api/schema/"' in body and '"validatorUrl": null' in body  # no schema sent to an outside validator


def test_the_paper_event_component_is_the_websocket_event_schema(user):
    document = APIClient(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}").get("/api/schema/?format=json").json()
    schemas = document["components"]["schemas"]
    for event_type in PAPER_EVENT_TYPES:
        assert schemas[component_name(event_type)] == WIRE_SCHEMAS[event_type]
    events = schemas["PaperEventPage"]["properties"]["events"]
    assert events == {"type": "array", "items": {"$ref": "#/components/schemas/PaperEvent"}}


class Documented:
    """Checks real answers against the operation's documented response in the served OpenAPI document."""

    def __init__(self, client: APIClient):
        self.client = client
        self.document = client.get("/api/schema/?format=json").json()
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, method: str, template: str, response) -> None:
        """Fail unless the response's status is documented for the operation and its JSON body satisfies it."""
        operation = self.document["paths"][template][method]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (method, template, response.status_code, list(operation["responses"]))
        if response.status_code != 204:
            schema = documented["content"]["application/json"]["schema"]
            # OpenAPI 3.1 schemas are JSON Schema 2020-12: validate against the document itself, so refs resolve.
            jsonschema.Draft202012Validator({**self.document, **schema}).validate(response.json())
        self.checked.append((method, template, response.status_code))


@pytest.mark.django_db(transaction=True)
def test_real_answers_satisfy_the_document(user, other_user):
    client = APIClient()
    tokens = client.post("/api/token/", {"username": "alice", "password": "pw-alice-123"}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    check = Documented(client)
    check("post", "/api/token/", tokens)
    check("post", "/api/token/", APIClient().post("/api/token/", {"username": "alice", "password": "x"},
                                                   format="json"))
    check("post", "/api/token/refresh/", client.post("/api/token/refresh/", {"refresh": tokens.json()["refresh"]},
                                                     format="json"))
    check("get", "/api/papers/", APIClient().get("/api/papers/"))

    bad = client.post("/api/papers/", {"file": ("x.pdf", b"plain text")}, format="multipart")
    check("post", "/api/papers/", bad)
    created = client.post("/api/papers/", {"file": _text_file(), "title": "NovaNet"}, format="multipart")
    check("post", "/api/papers/", created)
    paper_id = created.json()["id"]
    tasks.process_paper.apply(args=[paper_id], task_id=Paper.objects.get(pk=paper_id).task_id)

    check("get", "/api/papers/", client.get("/api/papers/"))
    check("get", "/api/papers/{id}/", client.get(f"/api/papers/{paper_id}/"))
    entities = client.get(f"/api/papers/{paper_id}/entities/")
    relationships = client.get(f"/api/papers/{paper_id}/relationships/")
    assert entities.json() and relationships.json(), "a processed paper, so the items are checked too"
    check("get", "/api/papers/{id}/entities/", entities)
    check("get", "/api/papers/{id}/relationships/", relationships)
    events = client.get(f"/api/papers/{paper_id}/events/?since=0")
    assert {event["event_type"] for event in events.json()["events"]} >= {"status_changed", "entity_extracted"}
    check("get", "/api/papers/{id}/events/", events)
    check("get", "/api/papers/{id}/events/", client.get(f"/api/papers/{paper_id}/events/?since=-1"))
    check("post", "/api/papers/{id}/cancel/", client.post(f"/api/papers/{paper_id}/cancel/"))
    check("post", "/api/papers/{id}/reprocess/", client.post(f"/api/papers/{paper_id}/reprocess/"))
    check("post", "/api/papers/{id}/reprocess/", client.post(f"/api/papers/{paper_id}/reprocess/"))
    other = APIClient(HTTP_AUTHORIZATION=f"Bearer {token_for(other_user)}")
    check("get", "/api/papers/{id}/", other.get(f"/api/papers/{paper_id}/"))
    check("delete", "/api/papers/{id}/", client.delete(f"/api/papers/{paper_id}/"))
    assert {code for _, _, code in check.checked} == {200, 201, 204, 400, 401, 404, 409}


def _text_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("novanet.txt", SAMPLE_TEXT.encode(), content_type="text/plain")
