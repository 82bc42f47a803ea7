"""Services: an entity's salience, key and signals and a result's metric and score are stored, checked and announced."""

import math
import re
import uuid

import pytest
from django.core.files.base import ContentFile

from papers import services
from papers.models import Entity, Paper, PaperEvent, Relationship
from papers.pipeline.entities import FoundEntity
from papers.pipeline.relationships import FoundRelationship
from tests.conftest import SAMPLE_TEXT
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]

ENTITY_KEYS = [
    "event_type", "paper_id", "timestamp", "entity_id", "entity_type", "entity_name", "confidence",
    "mentions", "salience", "key", "signals", "seq", "event_id",
]
RELATIONSHIP_KEYS = [
    "event_type", "paper_id", "timestamp", "relationship_id", "relationship_type", "source_id", "target_id",
    "confidence", "metric_id", "metric", "score", "seq", "event_id",
]
ALL_SIGNALS = ("table", "caption", "abstract", "title", "proposed")

FOUND_ENTITIES = [
    FoundEntity("MODEL", "NovaNet", 0.95, 7, 0, salience=0.912345, key=True,
                signals=("title", "proposed", "footnote", "title")),
    FoundEntity("DATASET", "SQuAD", 0.6, 3, 90, salience=1.7, signals=ALL_SIGNALS),
    FoundEntity("DATASET", "GLUE", 0.6, 2, 100, salience=math.nan),
    FoundEntity("DATASET", "MNLI", 0.6, 1, 180),
    FoundEntity("DATASET", "Wikipedia", 0.6, 1, 60),
    FoundEntity("METRIC", "F1", 0.6, 2, 150, salience=-0.2),
]
NOVANET = ("MODEL", "NovaNet")
FOUND_RELATIONSHIPS = [
    FoundRelationship("EVALUATED_ON", NOVANET, ("DATASET", "SQuAD"), 0.8, "91.2 F1 on SQuAD", metric="F1",
                      score=" 91.2 "),
    # The metric was not extracted as an entity: the score stays, the metric is null, no entity is made up.
    FoundRelationship("EVALUATED_ON", NOVANET, ("DATASET", "GLUE"), 0.7, "88.0% accuracy on GLUE",
                      metric="Accuracy", score="88.0%"),
    # A "score" longer than the column is a run of text, not a score: dropped, not cut into another number.
    FoundRelationship("EVALUATED_ON", NOVANET, ("DATASET", "MNLI"), 0.7, "on MNLI", metric="F1", score="9" * 33),
    FoundRelationship("TRAINED_ON", NOVANET, ("DATASET", "Wikipedia"), 0.9, "pre-trained on Wikipedia"),
]


def found_entities(text, *, on_progress=None):
    return FOUND_ENTITIES


def found_relationships(text, found, *, on_progress=None):
    return FOUND_RELATIONSHIPS


def process_paper(owner, settings, title: str = "t") -> Paper:
    """A paper of owner run through the pipeline with extractors giving the fields above."""
    settings.PAPER_ENTITY_EXTRACTOR = "tests.papers.test_result_fields.found_entities"
    settings.PAPER_RELATIONSHIP_EXTRACTOR = "tests.papers.test_result_fields.found_relationships"
    paper = Paper(owner=owner, title=title)
    paper.file.save("p.txt", ContentFile(SAMPLE_TEXT.encode()), save=False)
    paper.save()
    paper = services.paper_enqueue(paper=paper)
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    paper.refresh_from_db()
    assert paper.status == "completed"
    return paper


@pytest.fixture
def processed(user, settings) -> Paper:
    """A paper run through the pipeline with extractors giving the fields above."""
    return process_paper(user, settings)


def logged(paper, event_type) -> list[dict]:
    events = PaperEvent.objects.filter(paper=paper, event_type=event_type).order_by("seq")
    return [e.payload for e in events]


def test_entities_store_salience_key_and_known_signals(processed):
    stored = {e.name: (e.salience, e.key, e.signals, e.mentions) for e in Entity.objects.filter(paper=processed)}
    assert stored == {
        "NovaNet": (0.9123, True, ["title", "proposed"], 7),  # unknown and repeated signals dropped
        "SQuAD": (1.0, False, list(ALL_SIGNALS), 3),  # salience clamped to [0, 1]; all five signals kept
        "GLUE": (0.0, False, [], 2),  # not a number: none
        "MNLI": (0.0, False, [], 1),
        "Wikipedia": (0.0, False, [], 1),
        "F1": (0.0, False, [], 2),
    }


def test_entity_events_carry_exactly_the_stored_fields(processed):
    events = logged(processed, "entity_extracted")
    assert len(events) == len(FOUND_ENTITIES)
    for event in events:
        assert sorted(event) == sorted(ENTITY_KEYS)  # stored as PostgreSQL jsonb, which keeps no key order
        assert_wire_event(event)
        entity = Entity.objects.get(pk=event["entity_id"])
        assert (event["mentions"], event["salience"], event["key"], event["signals"]) == (
            entity.mentions, entity.salience, entity.key, entity.signals
        )
    novanet = next(e for e in events if e["entity_name"] == "NovaNet")
    assert (novanet["salience"], novanet["key"], novanet["signals"]) == (0.9123, True, ["title", "proposed"])


def test_results_store_their_metric_entity_and_score(processed):
    f1 = Entity.objects.get(paper=processed, entity_type="METRIC", name="F1")
    links = {
        link.target.name: (link.metric, link.score)
        for link in Relationship.objects.filter(paper=processed).select_related("target", "metric")
    }
    assert links == {"SQuAD": (f1, "91.2"), "GLUE": (None, "88.0%"), "MNLI": (f1, ""), "Wikipedia": (None, "")}
    assert not Entity.objects.filter(paper=processed, name="Accuracy").exists()
    assert list(f1.measured_results.values_list("target__name", flat=True).order_by("target__name")) == [
        "MNLI", "SQuAD"
    ]


def test_relationship_events_carry_metric_id_metric_and_score(processed):
    f1 = str(Entity.objects.get(paper=processed, entity_type="METRIC", name="F1").pk)
    names = dict(Entity.objects.filter(paper=processed).values_list("pk", "name"))
    events = logged(processed, "relationship_extracted")
    for event in events:
        assert sorted(event) == sorted(RELATIONSHIP_KEYS)
        assert_wire_event(event)
    by_target = {names[uuid.UUID(e["target_id"])]: (e["metric_id"], e["metric"], e["score"])
                 for e in events}
    assert by_target == {
        "SQuAD": (f1, "F1", "91.2"),
        "GLUE": (None, None, "88.0%"),
        "MNLI": (f1, "F1", None),
        "Wikipedia": (None, None, None),
    }


def test_the_api_returns_what_the_events_said(processed, api):
    entities = {e["entity_id"]: e for e in logged(processed, "entity_extracted")}
    rows = api.get(f"/api/papers/{processed.pk}/entities/").json()
    assert len(rows) == len(entities)
    for row in rows:
        event = entities[row["id"]]
        assert (row["mentions"], row["salience"], row["key"], row["signals"]) == (
            event["mentions"], event["salience"], event["key"], event["signals"]
        )
    links = {e["relationship_id"]: e for e in logged(processed, "relationship_extracted")}
    rows = api.get(f"/api/papers/{processed.pk}/relationships/").json()
    assert len(rows) == len(links) == len(FOUND_RELATIONSHIPS)
    for row in rows:
        event = links[row["id"]]
        expected = (event["metric_id"], event["metric"], event["score"])
        assert (row["metric_id"], row["metric_name"], row["score"]) == expected


def test_the_checks_on_what_an_extractor_hands_over():
    assert services._score("9" * 32) == "9" * 32 and services._score("9" * 33) == ""
    assert services._score(None) == services._score("  ") == ""
    assert services._signals(["caption", "x", "caption", "title"]) == ["caption", "title"]
    assert services._signals(None) == [] and services._signals("title") == []  # a bare string is not a list
    assert [services._salience(v) for v in (None, 0.5, 2, -1, math.inf, math.nan)] == [0.0, 0.5, 1.0, 0.0, 0.0, 0.0]


def test_the_progress_page_marks_key_entities_only(processed, user, client):
    client.force_login(user)
    html = client.get(f"/papers/{processed.pk}/").content.decode()
    rows = dict(re.findall(r'<tr data-entity-id="[^"]+" data-entity-name="([^"]+)"[^>]*>(.*?)</tr>', html))
    assert set(rows) == {e.name for e in FOUND_ENTITIES}
    assert [name for name, cells in rows.items() if 'class="badge key"' in cells] == ["NovaNet"]


def test_the_admin_shows_salience_key_metric_and_score(processed, admin_client):
    html = admin_client.get(f"/admin/papers/paper/{processed.pk}/change/").content.decode()
    for column in ("salience", "key", "metric", "score"):
        assert f'<th class="column-{column}' in html
    assert "0.9123" in html and "88.0%" in html and "METRIC: F1" in html
