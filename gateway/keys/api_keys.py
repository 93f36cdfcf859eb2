"""API keys: minting, revoking, and resolving a presented secret to its key."""

import functools
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connections, router, transaction
from django.utils import timezone

from console.tenancy import audit
from console.tenancy.models import Membership, Organization

from . import key_cache
from ..models import ApiKey

SECRET_PREFIX = "sk-"
MANAGEMENT_PREFIX = "mk-"  # the scope shows in the key: "mk-" keys call /api/v1, never /v1
SECRET_PREFIXES = {ApiKey.Kind.STANDARD: SECRET_PREFIX, ApiKey.Kind.MANAGEMENT: MANAGEMENT_PREFIX}
SECRET_RANDOM_BYTES = 32  # token_urlsafe(32) is 43 URL-safe characters: 256 random bits
DISPLAY_PREFIX_LENGTH = 10  # "sk-" and 7 characters: enough to recognise, useless to guess


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is enough: the secret carries 256 random bits, so there is nothing
    # to brute-force, and an unkeyed hash survives a SECRET_KEY rotation.
    return hashlib.sha256(secret.encode()).hexdigest()


_SECRET_SHAPE = re.compile(r"sk-[A-Za-z0-9_-]{40,}")
_MANAGEMENT_SHAPE = re.compile(r"mk-[A-Za-z0-9_-]{40,}")


def looks_like_secret(secret: str) -> bool:
    return _SECRET_SHAPE.fullmatch(secret) is not None


def looks_like_management_secret(secret: str) -> bool:
    return _MANAGEMENT_SHAPE.fullmatch(secret) is not None


def _insert_key(organization, *, name, created_by, allowed_models=(), expires_at=None, spend_limit=None,
                kind=ApiKey.Kind.STANDARD, **limits):
    secret = SECRET_PREFIXES[kind] + secrets.token_urlsafe(SECRET_RANDOM_BYTES)
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        kind=kind,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
        created_by=created_by,
        allowed_models=list(allowed_models),
        expires_at=expires_at,
        spend_limit=spend_limit,
        **limits,
    )
    # The audit row names the key by its display prefix; the secret never goes there.
    audit.record(
        "key.created", organization=organization, actor=created_by, target=key.prefix, key_id=key.pk, name=name,
        allowed_models=list(key.allowed_models), expires_at=expires_at.isoformat() if expires_at else None,
        spend_limit=spend_limit, kind=kind, **limits,
    )
    return key, secret


@transaction.atomic
def mint_api_key(organization, *, name="", created_by=None, allowed_models=(), expires_at=None):
    """Create a key and return it with its secret, which is never stored or shown again."""
    return _insert_key(organization, name=name, created_by=created_by, allowed_models=allowed_models,
                       expires_at=expires_at)


def revoke_api_key(key: ApiKey, *, actor=None) -> None:
    """Revoke a key (again is harmless). `actor` is who did it, None for the system."""
    with transaction.atomic():
        now = timezone.now()
        # The conditional update makes one of two simultaneous revocations the one that
        # counts, so the audit log has one row per key.
        revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            key.revoked_at = now
            audit.record("key.revoked", organization=key.organization_id, actor=actor, target=key.prefix,
                         key_id=key.pk, name=key.name)
        elif key.revoked_at is None:
            key.revoked_at = ApiKey.objects.filter(pk=key.pk).values_list("revoked_at", flat=True).first()
    forget_cached_key(key.secret_hash)


@transaction.atomic
def create_api_key(organization, *, name, created_by, allowed_models=(), expires_at=None, spend_limit=None,
                   budget_period=ApiKey.BudgetPeriod.NONE, rpm_limit=None, tpm_limit=None):
    """A standard key made in the console or the management API, with its optional limits.
    Returns (key, secret); the secret exists only in the caller's hands from here on."""
    return _insert_key(organization, name=name, created_by=created_by, allowed_models=allowed_models,
                       expires_at=expires_at, spend_limit=spend_limit, budget_period=budget_period,
                       rpm_limit=rpm_limit, tpm_limit=tpm_limit)


@transaction.atomic
def create_management_key(organization, *, name, created_by=None, expires_at=None):
    """An "mk-" key for the management API. Only owners and admins may make one
    (`created_by` None is the operator's command). Returns (key, secret)."""
    if created_by is not None and not Membership.objects.filter(
            organization=organization, user=created_by,
            role__in=[Membership.Role.OWNER, Membership.Role.ADMIN]).exists():
        raise PermissionDenied("Only owners and admins may create management keys.")
    return _insert_key(organization, name=name, created_by=created_by, expires_at=expires_at,
                       kind=ApiKey.Kind.MANAGEMENT)


# What update_api_key may change besides the name; every one of them is in KeyIdentity.
LIMIT_FIELDS = ("allowed_models", "expires_at", "spend_limit", "budget_period", "rpm_limit", "tpm_limit")


def _audited_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


@transaction.atomic
def update_api_key(key: ApiKey, *, actor=None, **changes) -> ApiKey:
    """Change a key's name and limits (LIMIT_FIELDS); one audit row for the limits that
    changed. Processes see new limits within the key-memory bound, as for a revocation."""
    if "name" in changes:
        rename_api_key(key, changes.pop("name"), actor=actor)
    unknown = set(changes) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"not a key limit: {sorted(unknown)}")
    # Locked, so the audit row's old values are the ones this change replaced.
    locked = ApiKey.objects.select_for_update().get(pk=key.pk)
    changed = {field: value for field, value in changes.items() if getattr(locked, field) != value}
    if changed:
        details = {}
        for field, value in changed.items():
            details[f"old_{field}"] = _audited_value(getattr(locked, field))
            details[field] = _audited_value(value)
            setattr(key, field, value)
        key.save(update_fields=list(changed))
        audit.record("key.updated", organization=key.organization_id, actor=actor, target=key.prefix,
                     key_id=key.pk, **details)
        transaction.on_commit(lambda: forget_cached_key(key.secret_hash))
    return key


@transaction.atomic
def rename_api_key(key: ApiKey, name: str, *, actor=None) -> None:
    # The name is not part of KeyIdentity, so the key cache stays valid.
    previous = key.name
    if previous == name:
        return
    key.name = name
    key.save(update_fields=["name"])
    audit.record("key.renamed", organization=key.organization_id, actor=actor, target=key.prefix, key_id=key.pk,
                 old_name=previous, new_name=name)


def key_status(key: ApiKey, now=None) -> str:
    """"revoked", "expired" or "active", in that order of precedence."""
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.is_active(now) else "expired"


@dataclass(frozen=True)
class KeyIdentity:
    """What the request path needs to know about a key, cheap to cache."""

    key_id: int
    organization_id: int
    prefix: str
    allowed_models: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    spend_limit: Decimal | None = None
    budget_period: str = "none"  # what spend_limit is per (billing.budget_periods)
    log_content: bool = False

    def allows(self, public_model_id: str) -> bool:
        return not self.allowed_models or public_model_id in self.allowed_models


def identity_of(row: ApiKey) -> KeyIdentity:
    return KeyIdentity(
        key_id=row.pk,
        organization_id=row.organization_id,
        prefix=row.prefix,
        allowed_models=tuple(row.allowed_models or ()),
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        spend_limit=row.spend_limit,
        budget_period=row.budget_period,
        log_content=row.organization.log_content,
    )


# Two tiers: this process's memory for a couple of seconds (no round trip at all on a
# warm key), then the shared cache, then the database. A revocation clears both tiers
# here and the shared tier everywhere; other processes see it once their short local
# entry expires (GATEWAY_KEY_MEMORY_SECONDS).
_memory: dict[str, tuple[float, object]] = {}
_MEMORY_MAX_ENTRIES = 10_000


def forget_cached_key(secret_hash: str) -> None:
    _memory.pop(secret_hash, None)
    key_cache.forget(secret_hash)


def forget_remembered_keys() -> None:
    _memory.clear()


def find_key(secret: str) -> KeyIdentity | None:
    """The key behind a presented secret, revoked or expired ones included (the caller
    decides what to say); None when no key has this secret."""
    secret_hash = hash_secret(secret)
    now = time.monotonic()
    remembered = _memory.get(secret_hash)
    if remembered is not None and remembered[0] > now:
        cached = remembered[1]
    else:
        cached = _shared_lookup(secret_hash)
        if len(_memory) >= _MEMORY_MAX_ENTRIES:
            _memory.clear()  # a flood of made-up secrets must not grow the process without bound
        _memory[secret_hash] = (now + settings.GATEWAY_KEY_MEMORY_SECONDS, cached)
    return None if cached == key_cache.UNKNOWN else cached


def _shared_lookup(secret_hash: str):
    cached = key_cache.get(secret_hash, KeyIdentity)
    if cached is None:
        cached = _identity_from_database(secret_hash)
        key_cache.put(secret_hash, cached)
    return cached


# The columns KeyIdentity is made of, read in one statement on a cold key: building an ORM
# query and two model objects cost more CPU than the round trip itself.
_IDENTITY_COLUMNS = (
    (ApiKey, "id"), (ApiKey, "organization"), (ApiKey, "prefix"), (ApiKey, "allowed_models"),
    (ApiKey, "expires_at"), (ApiKey, "revoked_at"), (ApiKey, "rpm_limit"), (ApiKey, "tpm_limit"),
    (ApiKey, "spend_limit"), (ApiKey, "budget_period"), (Organization, "log_content"), (ApiKey, "secret_hash"),
)


@functools.cache
def _identity_statement(alias: str, vendor: str) -> tuple[str, list]:
    """The SELECT and, per column, the converters the ORM would apply to it (SQLite's
    decimals and datetimes, JSON), made once per database: names come from the models'
    metadata, so a renamed column or table cannot leave this statement behind. The
    converters depend on the backend and the settings only, not on which thread's
    connection made them (each is called with the caller's connection)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    keys, organizations = ApiKey._meta.db_table, Organization._meta.db_table
    columns, converters = [], []
    for model, name in _IDENTITY_COLUMNS:
        col = model._meta.get_field(name).get_col(model._meta.db_table)
        columns.append(f"{quote(col.alias)}.{quote(col.target.column)}")
        converters.append((connection.ops.get_db_converters(col) + col.get_db_converters(connection), col))
    sql = (f"SELECT {', '.join(columns)} FROM {quote(keys)} INNER JOIN {quote(organizations)}"
           f" ON {quote(organizations)}.{quote(Organization._meta.pk.column)}"
           f" = {quote(keys)}.{quote(ApiKey._meta.get_field('organization').column)}"
           f" WHERE {quote(keys)}.{quote(ApiKey._meta.get_field('secret_hash').column)} = %s"
           f" AND {quote(keys)}.{quote(ApiKey._meta.get_field('kind').column)} <> %s")
    return sql, converters


def _identity_from_database(secret_hash: str):
    """The KeyIdentity of the standard or playground key with this hash, or UNKNOWN.
    Management keys are unknown here: they never call /v1, whatever their shape."""
    alias = router.db_for_read(ApiKey)
    connection = connections[alias]
    sql, converters = _identity_statement(alias, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [secret_hash, ApiKey.Kind.MANAGEMENT.value])
        row = cursor.fetchone()
    if row is None:
        return key_cache.UNKNOWN
    values = []
    for value, (functions, col) in zip(row, converters):
        for convert in functions:
            value = convert(value, col, connection)
        values.append(value)
    (key_id, organization_id, prefix, allowed_models, expires_at, revoked_at, rpm_limit, tpm_limit, spend_limit,
     budget_period, log_content, stored_hash) = values
    if not hmac.compare_digest(stored_hash, secret_hash):
        return key_cache.UNKNOWN
    return KeyIdentity(
        key_id=key_id, organization_id=organization_id, prefix=prefix, allowed_models=tuple(allowed_models or ()),
        expires_at=expires_at, revoked=revoked_at is not None, rpm_limit=rpm_limit, tpm_limit=tpm_limit,
        spend_limit=spend_limit, budget_period=budget_period, log_content=log_content,
    )


def find_management_key(secret: str) -> ApiKey | None:
    """The management key behind a presented "mk-" secret, revoked or expired ones
    included. Read from the database every time: the management API is not a hot path, and
    a revocation then counts at once."""
    secret_hash = hash_secret(secret)
    row = (ApiKey.objects.select_related("organization", "created_by")
           .filter(kind=ApiKey.Kind.MANAGEMENT, secret_hash=secret_hash).first())
    if row is None or not hmac.compare_digest(row.secret_hash, secret_hash):
        return None
    return row


def playground_key(organization, user) -> KeyIdentity:
    """The organization's key for the console playground, minted on first use.

    Its secret is thrown away at once: the console calls the request path in-process with
    this identity, so no secret ever reaches a browser or travels over HTTP. Requests made
    with it are billed and listed like any other key's."""
    with transaction.atomic():
        # Lock the organization so two first uses at once mint one key, not two.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        row = (ApiKey.objects.filter(organization=organization, kind=ApiKey.Kind.PLAYGROUND, revoked_at__isnull=True)
               .order_by("pk").first())
        if row is None or not row.is_active():
            secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)
            row = ApiKey.objects.create(
                organization=organization,
                name="Console playground",
                kind=ApiKey.Kind.PLAYGROUND,
                prefix=secret[:DISPLAY_PREFIX_LENGTH],
                secret_hash=hash_secret(secret),
                created_by=user,
            )
    return identity_of(row)
