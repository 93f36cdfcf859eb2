"""The shared tier of the key cache keeps every field of a key exactly, and forgets it on
revocation for every process."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.keys import key_cache
from gateway.keys.api_keys import (
    KeyIdentity,
    find_key,
    forget_remembered_keys,
    hash_secret,
    mint_api_key,
    revoke_api_key,
)
from gateway.models import ApiKey


def test_an_identity_comes_back_from_the_shared_tier_exactly():
    identity = KeyIdentity(key_id=7, organization_id=3, prefix="sk-abcdefg", allowed_models=("demo:echo", "a:b"),
                           expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), revoked=False, rpm_limit=60,
                           tpm_limit=None, spend_limit=Decimal("12.345678"), log_content=True)
    key_cache.put("h" * 64, identity)
    assert key_cache.get("h" * 64, KeyIdentity) == identity
    key_cache.put("u" * 64, key_cache.UNKNOWN)
    assert key_cache.get("u" * 64, KeyIdentity) == key_cache.UNKNOWN
    key_cache.forget("h" * 64)
    assert key_cache.get("h" * 64, KeyIdentity) is None


@pytest.mark.django_db
def test_a_revocation_reaches_a_process_that_only_has_the_shared_tier(org):
    key, secret = mint_api_key(org)
    assert find_key(secret).revoked is False  # now in both tiers
    forget_remembered_keys()  # another process: the shared tier only
    # Revoked behind the cache's back, the shared tier still answers from before...
    ApiKey.objects.filter(pk=key.pk).update(name="renamed")
    assert key_cache.get(hash_secret(secret), KeyIdentity) is not None
    revoke_api_key(key)  # ...but a revocation clears it for everyone
    forget_remembered_keys()
    assert find_key(secret).revoked is True
