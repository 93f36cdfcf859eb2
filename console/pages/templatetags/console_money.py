"""{{ amount|usd }}: an exact USD amount as plain digits (0.0000009, never 9E-7)."""

from decimal import Decimal

from django import template

from billing.money import usd as plain_usd

register = template.Library()


@register.filter
def usd(value):
    if value is None or value == "":
        return ""
    return plain_usd(value if isinstance(value, Decimal) else Decimal(str(value)))
