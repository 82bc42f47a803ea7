"""How papers are shown: one table of step labels and error messages, one rounding, for templates and scripts."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from papers import display
from realtime import bus
from realtime.system import LATEST_KEY, system_status_latest, system_status_remember

ROOT = Path(__file__).resolve().parents[2]


def test_steps_show_in_words_only_while_processing():
    assert display.step_label("relationship_extraction", "processing") == "Relationship extraction"
    assert display.step_label("relationship_extraction", "completed") == "—"
    assert display.step_label("", "processing") == "—"
    assert display.step_label("new_step", "processing") == "New step"


def test_confidences_and_percentages_round_half_up_from_their_shortest_decimal_form():
    assert display.confidence_text(0.855) == "0.86"  # toFixed(2) says 0.85: format.js rounds as this does
    assert display.confidence_text(0.854) == "0.85"
    assert display.confidence_text(1) == "1.00"
    assert display.percent_text(1.0) == "100%"
    assert display.percent_text(0.355) == "36%"
    assert display.percent_text(None) == "0%"


def test_every_error_code_of_the_protocol_has_a_message():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    listed = protocol[protocol.index("Error codes: "):protocol.index("Text is extracted in a child process")]
    codes = set(re.findall(r"`([a-z_]+)`", listed)) - {"queue", "text_extraction"}
    codes -= {c for c in codes if c.isupper() or c.startswith("paper_")}
    assert codes and codes <= set(display.ERROR_MESSAGES)
    assert display.error_text("no_such_code") == display.ERROR_MESSAGES["unknown"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_pages_embed_the_tables_as_a_json_data_block_not_a_script(user):
    html = logged_in(user).get("/").content.decode()
    block = re.search(r'<script id="display-tables" type="application/json">(.*?)</script>', html).group(1)
    assert json.loads(block) == json.loads(json.dumps(display.tables()))


@pytest.mark.django_db
def test_the_system_panel_renders_the_last_figures_at_once(user):
    bus._sync_client().delete(LATEST_KEY)
    html = logged_in(user).get("/").content.decode()
    assert 'data-stat="queue_size" data-format="figure" data-value="">–<' in html
    system_status_remember({"queue_size": 3, "active_workers": 2, "processing_rate": 1.5, "system_load": 0.25,
                            "event_type": "system_status"})
    assert system_status_latest() == {"queue_size": 3, "active_workers": 2, "processing_rate": 1.5,
                                      "system_load": 0.25}
    html = logged_in(user).get("/").content.decode()
    shown = {"queue_size": "3", "active_workers": "2", "processing_rate": "1.5", "system_load": "0.25"}
    for stat, value in shown.items():
        assert f'data-stat="{stat}" data-format="figure" data-value="{value}">{value}<' in html
    bus._sync_client().delete(LATEST_KEY)
