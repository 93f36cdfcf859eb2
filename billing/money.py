"""Money is exact: Decimal USD in code, an integer count of picodollars in the database.

Catalog prices have at most 6 decimal places per million tokens, so every cost is a whole
number of picodollars (1e-12 USD) and no rounding ever happens. Integers also keep SQLite,
which would turn long decimals into floats, exactly as correct as PostgreSQL.
"""

from decimal import ROUND_CEILING, Decimal

from django.db import models

PICO = Decimal("1e-12")
PRICE_DECIMAL_PLACES = 6
MILLION = 1_000_000
ZERO = Decimal(0)


class InexactAmount(ValueError):
    pass


def to_units(amount: Decimal) -> int:
    units = amount / PICO
    if units != units.to_integral_value():
        raise InexactAmount(f"{amount} USD is not a whole number of picodollars")
    return int(units)


def from_units(units: int) -> Decimal:
    if not units:
        return ZERO
    amount = (Decimal(units) * PICO).normalize()
    # normalize() writes 10 as 1E+1; keep whole amounts plain.
    return amount.quantize(Decimal(1)) if amount.as_tuple().exponent > 0 else amount


def usd(amount: Decimal) -> str:
    """A plain decimal string without exponent, e.g. 0.00000326."""
    text = format(amount.normalize(), "f") if amount else "0"
    return text


def ceil_to_unit(amount: Decimal) -> Decimal:
    return amount.quantize(PICO, rounding=ROUND_CEILING)


def token_cost(prompt_tokens: int, completion_tokens: int, input_per_mtok: Decimal, output_per_mtok: Decimal,
               cached_tokens: int = 0, cached_input_per_mtok: Decimal | None = None,
               cache_write_tokens: int = 0, cache_write_per_mtok: Decimal | None = None) -> Decimal:
    """The exact USD cost of a request (billing.charging.cost_of is its one caller in the
    product). prompt_tokens counts every input token; of those, cached_tokens (read from a
    prompt cache) are billed at the cached price and cache_write_tokens (written to one,
    Anthropic's cache creation) at the cache-write price, each when the catalog has one.
    Without it they are billed like any prompt token: that is what the gateway charged
    before it knew the bucket, so a catalog that names no such price is charged exactly
    what it was, and a cache write is never free (Anthropic bills it above the input price,
    so an operator who leaves the price out undercharges rather than gives tokens away)."""
    cached = min(cached_tokens, prompt_tokens) if cached_input_per_mtok is not None else 0
    written = min(cache_write_tokens, prompt_tokens - cached) if cache_write_per_mtok is not None else 0
    total = (
        (prompt_tokens - cached - written) * input_per_mtok
        + cached * (cached_input_per_mtok or ZERO)
        + written * (cache_write_per_mtok or ZERO)
        + completion_tokens * output_per_mtok
    ) / MILLION
    return ceil_to_unit(total) if total else ZERO


class MoneyField(models.BigIntegerField):
    """USD as Decimal in Python, stored as whole picodollars (±9.2 million USD)."""

    description = "Exact USD amount"

    def from_db_value(self, value, expression, connection):
        return None if value is None else from_units(value)

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value))

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, int):
            value = Decimal(value)
        return to_units(Decimal(str(value)) if not isinstance(value, Decimal) else value)

    def formfield(self, **kwargs):
        from django import forms

        return forms.DecimalField(**{"decimal_places": 12, "max_digits": 19, **kwargs})
