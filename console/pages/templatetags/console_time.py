"""{{ when|ago }}: "just now" under a minute, else Django's "3 minutes ago", so a key
used a moment ago never reads "0 minutes ago"."""

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value):
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
