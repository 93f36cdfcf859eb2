"""Money is exact: Decimal USD in code, an integer count of picodollars in the database.

Catalog prices have at most 6 decimal places per million tokens, so every cost is a whole
number of picodollars (1e-12 USD) and no rounding ever happens. Integers also keep SQLite,
which would turn long decimals into floats, exactly as correct as PostgreSQL.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.db import models

PICO = Decimal("1e-12")
PRICE_DECIMAL_PLACES = 6
MILLION = 1_000_000
ZERO = Decimal(0)
UNITS_PER_USD = 10**12


class InexactAmount(ValueError):
    pass


def to_units(amount: Decimal) -> int:
    units = amount.scaleb(12)  # exact: a shift of the exponent, where dividing by PICO rounds to 28 digits
    if units != units.to_integral_value():
        raise InexactAmount(f"{amount} USD is not a whole number of picodollars")
    return int(units)


def from_units(units: int) -> Decimal:
    """Picodollars as USD, with no trailing zeros, whole amounts plain (10, not 1E+1)."""
    if not units:
        return ZERO
    whole, rest = divmod(units, UNITS_PER_USD)
    if not rest:
        return Decimal(whole)
    return Decimal(units).scaleb(-12).normalize()


def usd(amount: Decimal) -> str:
    """A plain decimal string without exponent, e.g. 0.00000326."""
    text = format(amount.normalize(), "f") if amount else "0"
    return text


def ceil_to_unit(amount: Decimal) -> Decimal:
    return amount.quantize(PICO, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class PerToken:
    """A model's prices per million tokens as whole picodollars per token, over one power of
    ten: p USD per million tokens is p x 10^6 picodollars per token, a whole number for the
    catalog's 6 decimal places (scale 1). A price with more places stays exact over a larger
    scale, and the cost is rounded up to the picodollar once, at the end."""

    input: int
    output: int
    cached_input: int | None
    cache_write: int | None
    scale: int


def per_token(input_per_mtok: Decimal, output_per_mtok: Decimal, cached_input_per_mtok: Decimal | None = None,
              cache_write_per_mtok: Decimal | None = None) -> PerToken:
    given = [p for p in (input_per_mtok, output_per_mtok, cached_input_per_mtok, cache_write_per_mtok)
             if p is not None]
    places = max(0, *(-p.normalize().as_tuple().exponent - PRICE_DECIMAL_PLACES for p in given))

    def units(price: Decimal | None) -> int | None:
        return None if price is None else int(price.scaleb(PRICE_DECIMAL_PLACES + places))  # exact shifts

    return PerToken(units(input_per_mtok), units(output_per_mtok), units(cached_input_per_mtok),
                    units(cache_write_per_mtok), 10 ** places)


def token_cost_units(prompt_tokens: int, completion_tokens: int, prices: PerToken, cached_tokens: int = 0,
                     cache_write_tokens: int = 0) -> int:
    """The exact cost of a request in picodollars: the one pricing rule. prompt_tokens counts
    every input token; of those, cached_tokens (read from a prompt cache) are billed at the
    cached price and cache_write_tokens (written to one, Anthropic's cache creation) at the
    cache-write price, each when the catalog has one. Without it they are billed like any
    prompt token: that is what the gateway charged before it knew the bucket, so a catalog
    that names no such price is charged exactly what it was, and a cache write is never
    free (Anthropic bills it above the input price, so an operator who leaves the price out
    undercharges rather than gives tokens away). Integers throughout: exact, and a tenth of
    the time Decimal arithmetic takes on the request path."""
    cached = min(cached_tokens, prompt_tokens) if prices.cached_input is not None else 0
    written = min(cache_write_tokens, prompt_tokens - cached) if prices.cache_write is not None else 0
    scaled = ((prompt_tokens - cached - written) * prices.input + cached * (prices.cached_input or 0)
              + written * (prices.cache_write or 0) + completion_tokens * prices.output)
    return -(-scaled // prices.scale)  # rounded up, as ceil_to_unit would


def cost_in_usd(units: int) -> Decimal:
    """A cost in picodollars as USD, to the picodollar (what ceil_to_unit gave: 12 places)."""
    return Decimal(units).scaleb(-12) if units else ZERO


def token_cost(prompt_tokens: int, completion_tokens: int, input_per_mtok: Decimal, output_per_mtok: Decimal,
               cached_tokens: int = 0, cached_input_per_mtok: Decimal | None = None,
               cache_write_tokens: int = 0, cache_write_per_mtok: Decimal | None = None) -> Decimal:
    """The exact USD cost of a request at these prices (token_cost_units says how each bucket
    is priced); billing.charging.cost_of is the product's way in, with the prices converted
    once per model."""
    prices = per_token(input_per_mtok, output_per_mtok, cached_input_per_mtok, cache_write_per_mtok)
    return cost_in_usd(token_cost_units(prompt_tokens, completion_tokens, prices, cached_tokens,
                                        cache_write_tokens))


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
