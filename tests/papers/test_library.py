"""The library (models evaluated on datasets across a user's own papers) and the paper page's graph data."""

import json
import re

import pytest
from django.test import Client

from papers import selectors
from papers.models import Relationship
from tests.papers.test_result_fields import process_paper

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]

@pytest.fixture
def process(settings):
    """Run a paper of the given owner through the pipeline with the extractors of test_result_fields."""
    return lambda owner, title: process_paper(owner, settings, title)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pairs(rows) -> list[tuple]:
    return [(r["model"], r["dataset"], r["count"], [(p["id"], p["metric"], p["score"]) for p in r["papers"]])
            for r in rows]


def test_evaluations_pair_models_with_datasets_with_metric_score_and_counts(user, process, django_assert_num_queries):
    first, second = process(user, "First"), process(user, "Second")
    with django_assert_num_queries(1):
        rows = selectors.evaluation_list(user=user)
    newest_first = [second.pk, first.pk]
    # TRAINED_ON (Wikipedia) is not an evaluation; a metric not extracted as an entity is null, its score kept.
    assert pairs(rows) == [
        ("NovaNet", "GLUE", 2, [(pk, None, "88.0%") for pk in newest_first]),
        ("NovaNet", "MNLI", 2, [(pk, "F1", None) for pk in newest_first]),
        ("NovaNet", "SQuAD", 2, [(pk, "F1", "91.2") for pk in newest_first]),
    ]
    assert rows[0]["papers"][0]["title"] == "Second"


def test_evaluations_are_only_the_users_own_papers_staff_included(user, other_user, staff_user, process):
    process(other_user, "Someone else's")
    assert selectors.evaluation_list(user=user) == []
    assert selectors.evaluation_list(user=staff_user) == []  # staff may open every paper; the library is theirs
    mine = process(user, "Mine")
    assert {p["id"] for row in selectors.evaluation_list(user=user) for p in row["papers"]} == {mine.pk}


def test_no_evaluations_for_anonymous_or_inactive_users(user, process, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    process(user, "Mine")
    user.is_active = False
    user.save()
    assert selectors.evaluation_list(user=user) == []
    assert selectors.evaluation_list(user=AnonymousUser()) == []


def test_the_evaluation_rows_read_are_capped(user, process):
    process(user, "Mine")
    assert sum(row["count"] for row in selectors.evaluation_list(user=user, limit=2)) == 2


def test_library_page_links_the_users_papers_and_no_one_elses(user, other_user, process):
    mine, theirs = process(user, "Mine <b>"), process(other_user, "Theirs")
    page = logged_in(user).get("/library/").content.decode()
    assert f'href="/papers/{mine.pk}/"' in page and "Mine &lt;b&gt;" in page
    assert str(theirs.pk) not in page and "Theirs" not in page
    assert re.search(r'data-model="NovaNet" data-dataset="SQuAD">\s*<td>NovaNet</td><td>SQuAD</td>'
                     r'<td class="conf" data-field="count">1</td>', page)
    assert "(F1 91.2)" in page and "(88.0%)" in page
    assert "3 datasets, 1 paper with results" in page
    assert 'href="/library/"' in page  # the nav link


def test_library_page_without_results_and_for_anonymous(user):
    assert 'id="library-empty"' in logged_in(user).get("/library/").content.decode()
    assert Client().get("/library/").status_code == 302
    assert logged_in(user).post("/library/").status_code == 405


def test_paper_page_carries_the_graph_with_each_relationships_evidence(user, process):
    paper = process(user, "Mine")
    page = logged_in(user).get(f"/papers/{paper.pk}/").content.decode()
    graph = json.loads(re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page).group(1))
    assert sorted(n["entity_name"] for n in graph["nodes"]) == ["F1", "GLUE", "MNLI", "NovaNet", "SQuAD", "Wikipedia"]
    stored = {str(r.pk): r for r in Relationship.objects.filter(paper=paper).select_related("source", "target")}
    assert {e["relationship_id"]: e["evidence"] for e in graph["edges"]} == {pk: r.evidence for pk, r in stored.items()}
    squad = next(e for e in graph["edges"] if stored[e["relationship_id"]].target.name == "SQuAD")
    assert (squad["metric"], squad["score"], squad["relationship_type"]) == ("F1", "91.2", "EVALUATED_ON")
    assert squad["source_id"] == str(stored[squad["relationship_id"]].source_id)


def test_the_relationships_api_gives_the_evidence_the_graph_reads(user, api, process):
    paper = process(user, "Mine")
    rows = api.get(f"/api/papers/{paper.pk}/relationships/").json()
    stored = dict(Relationship.objects.filter(paper=paper).values_list("id", "evidence"))
    assert {row["id"]: row["evidence"] for row in rows} == {str(pk): evidence for pk, evidence in stored.items()}
    assert "91.2 F1 on SQuAD" in [row["evidence"] for row in rows]
