"""The latest system_status figures for a page's first render (realtime keeps them; papers' views need not know)."""

from django import template

from realtime.system import FIGURES, system_status_latest

register = template.Library()


@register.simple_tag
def latest_system_status():
    """{% latest_system_status as system %}: the figures last broadcast (each None when none is kept)."""
    return system_status_latest() or dict.fromkeys(FIGURES)
