"""The one access rule: paper_visible_to and the querysets built from it agree for every kind of user."""

import pytest
from django.contrib.auth.models import AnonymousUser

from papers import selectors
from papers.models import Paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(django_user_model):
    make = django_user_model.objects.create_user
    return {
        "anonymous": AnonymousUser(),
        "owner": make("owner", password="x"),
        "other": make("other", password="x"),
        "staff": make("staff", password="x", is_staff=True),
        "inactive owner": make("gone", password="x", is_active=False),
        "inactive staff": make("gone-staff", password="x", is_staff=True, is_active=False),
    }


EXPECTED = {"anonymous": False, "owner": True, "other": False, "staff": True, "inactive owner": False,
            "inactive staff": False}


@pytest.mark.parametrize("who", EXPECTED)
def test_the_rule_and_the_querysets_agree(people, text_upload, who):
    owner = people["inactive owner"] if who == "inactive owner" else people["owner"]
    paper = Paper.objects.create(owner=owner, title="p", file=text_upload)
    user = people[who]
    assert selectors.paper_visible_to(user, paper.owner_id) is EXPECTED[who]
    assert selectors.paper_list_visible(user=user).filter(pk=paper.pk).exists() is EXPECTED[who]
    assert (selectors.paper_get_visible(user=user, paper_id=paper.pk) is not None) is EXPECTED[who]
    assert (selectors.paper_state_get(user=user, paper_id=paper.pk) is not None) is EXPECTED[who]


def test_nobody_is_nobodys_owner():
    assert selectors.paper_visible_to(None, None) is False
    assert selectors.paper_visible_to(AnonymousUser(), None) is False
