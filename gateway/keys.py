"""API keys: minting, revoking, and resolving a presented secret to its key."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .models import ApiKey

SECRET_PREFIX = "sk-"
SECRET_RANDOM_BYTES = 32  # token_urlsafe(32) is 43 URL-safe characters: 256 random bits
DISPLAY_PREFIX_LENGTH = 10  # "sk-" and 7 characters: enough to recognise, useless to guess


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is enough: the secret carries 256 random bits, so there is nothing
    # to brute-force, and an unkeyed hash survives a SECRET_KEY rotation.
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(secret: str) -> bool:
    body = secret[len(SECRET_PREFIX):]
    return (
        secret.startswith(SECRET_PREFIX)
        and len(body) >= 40
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in body)
    )


def mint_api_key(organization, *, name="", created_by=None, allowed_models=(), expires_at=None):
    """Create a key and return it with its secret, which is never stored or shown again."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
        created_by=created_by,
        allowed_models=list(allowed_models),
        expires_at=expires_at,
    )
    return key, secret


def revoke_api_key(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    forget_cached_key(key.secret_hash)


@dataclass(frozen=True)
class KeyIdentity:
    """What the request path needs to know about a key, cheap to cache."""

    key_id: int
    organization_id: int
    prefix: str
    allowed_models: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool

    def allows(self, public_model_id: str) -> bool:
        return not self.allowed_models or public_model_id in self.allowed_models


def _cache_key(secret_hash: str) -> str:
    return f"apikey:{secret_hash}"


def forget_cached_key(secret_hash: str) -> None:
    cache.delete(_cache_key(secret_hash))


_UNKNOWN = "unknown"


def find_key(secret: str) -> KeyIdentity | None:
    """The key behind a presented secret, revoked or expired ones included (the caller
    decides what to say); None when no key has this secret."""
    secret_hash = hash_secret(secret)
    cached = cache.get(_cache_key(secret_hash))
    if cached == _UNKNOWN:
        return None
    if cached is None:
        row = ApiKey.objects.filter(secret_hash=secret_hash).first()
        if row is None or not hmac.compare_digest(row.secret_hash, secret_hash):
            cache.set(_cache_key(secret_hash), _UNKNOWN, settings.GATEWAY_CACHE_SECONDS)
            return None
        cached = KeyIdentity(
            key_id=row.pk,
            organization_id=row.organization_id,
            prefix=row.prefix,
            allowed_models=tuple(row.allowed_models or ()),
            expires_at=row.expires_at,
            revoked=row.revoked_at is not None,
        )
        cache.set(_cache_key(secret_hash), cached, settings.GATEWAY_CACHE_SECONDS)
    return cached
