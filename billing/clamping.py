"""Fitting a usage record to the ledger's columns, in one place, before it is booked.

Upstreams write part of a usage event (an error code, token counts), so the ledger must
take whatever they sent: text loses NUL and unpaired surrogates (PostgreSQL text and UTF-8
cannot hold them) and is cut to its column's length; counts are held within their column's
range; a key or catalog model deleted since the request is forgotten, as it would have been
had it been deleted after booking. Three things are never changed: the request id (it is
the record's identity: cutting two ids to one would book one request for two), the cost
and the prices (they are what the request was charged). An event those make unbookable
is quarantined instead (billing.quarantine).
"""

import re

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from .batch_params import id_set
from .models import UsageRecord
from .money import MoneyField

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

IDENTITY = {"request_id"}
# The column ranges PostgreSQL enforces; SQLite would take more, but both shapes must
# store the same values.
RANGES = BaseDatabaseOperations.integer_field_ranges


def fit_text(value, max_length: int | None) -> str:
    text = value if isinstance(value, str) else str(value)
    # An ASCII string (isascii() is a flag, not a scan) holds no surrogate: only NUL to
    # look for, and `in` is far cheaper than the expression, once per field of every event.
    if not text.isascii() or "\x00" in text:
        text = _UNSTORABLE.sub("", text)
    return text[:max_length] if max_length else text


REQUEST_ID_LENGTH = UsageRecord._meta.get_field("request_id").max_length


def is_storable_request_id(value) -> bool:
    """A request id is booked as it came or not at all (both database shapes alike)."""
    return (isinstance(value, str) and 0 < len(value) <= REQUEST_ID_LENGTH
            and (value.isascii() and "\x00" not in value or not _UNSTORABLE.search(value)))


def _fitted_fields():
    texts, counts = [], []
    for field in UsageRecord._meta.concrete_fields:
        if field.name in IDENTITY or field.primary_key or field.is_relation or isinstance(field, MoneyField):
            continue
        if isinstance(field, models.CharField):
            texts.append(field)
        elif isinstance(field, models.IntegerField):
            counts.append(field)
    return texts, counts


TEXT_FIELDS, COUNT_FIELDS = _fitted_fields()


# (attribute, max length) and (attribute, lowest, highest value) of the fitted fields.
TEXTS = [(field.attname, field.max_length) for field in TEXT_FIELDS]
COUNTS = [(field.attname, *RANGES[field.get_internal_type()]) for field in COUNT_FIELDS]


def fit_values(values: dict) -> dict:
    """A usage record's column values by attribute name (billing.usage_rows) with every
    upstream-written field made storable (in place)."""
    for attname, max_length in TEXTS:
        value = values[attname]
        if value is not None:
            values[attname] = fit_text(value, max_length)
    for attname, low, high in COUNTS:
        value = values[attname]
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            values[attname] = min(max(value, low), high)
    return values


def forget_missing_references(records: list[dict]) -> None:
    """Unlink keys and catalog models that no longer exist, in place. The database checks
    these references only at commit, where one dangling id would refuse every event."""
    for name in ("api_key", "catalog_model"):
        field = UsageRecord._meta.get_field(name)
        attname = field.attname
        wanted = {r[attname] for r in records} - {None}
        found = field.related_model.objects.filter(pk__in=id_set(wanted)).values_list("pk", flat=True) if wanted else ()
        existing = set(found)
        for record in records:
            if record[attname] not in existing:
                record[attname] = None
