"""Template side of papers/display.py: the same labels and rounding as static/paperpipeline/format.js."""

from django import template
from django.utils.html import json_script

from papers import display

register = template.Library()

register.filter("confidence", display.confidence_text)
register.filter("error_text", display.error_text)
register.filter("percent", display.percent_text)


@register.filter
def step_label(step: str, status: str) -> str:
    """{{ paper.current_step|step_label:paper.status }}"""
    return display.step_label(step, status)


@register.simple_tag
def display_tables():
    """The tables as a JSON data block (not a script: the Content Security Policy has nothing to allow)."""
    return json_script(display.tables(), "display-tables")
