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


@pytest.mark.django_db
def test_a_cold_key_read_from_the_database_has_every_field_the_models_hold(org):
    """The cold path reads KeyIdentity's columns with one SELECT of its own: every field must
    come back as the ORM would give it (SQLite's decimals and datetimes, JSON included)."""
    from gateway.keys.api_keys import create_api_key, create_management_key, identity_of

    org.log_content = True
    org.save(update_fields=["log_content"])
    key, secret = create_api_key(org, name="all limits", created_by=None, allowed_models=("demo:echo", "a:b"),
                                 expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
                                 spend_limit=Decimal("12.3456789012"), budget_period=ApiKey.BudgetPeriod.MONTHLY,
                                 rpm_limit=60, tpm_limit=9000)
    plain, plain_secret = mint_api_key(org)
    _, management_secret = create_management_key(org, name="mk")
    rows = ApiKey.objects.select_related("organization")
    for secret_of, row in ((secret, rows.get(pk=key.pk)), (plain_secret, rows.get(pk=plain.pk))):
        forget_remembered_keys()
        key_cache.forget(hash_secret(secret_of))
        found = find_key(secret_of)
        assert found == identity_of(row)
        assert str(found.spend_limit) == str(identity_of(row).spend_limit)  # the same digits, not only equal
    assert find_key(secret).expires_at.tzinfo is not None and find_key(secret).log_content is True
    forget_remembered_keys()
    # A management key's secret never resolves on /v1, nor does a made-up one.
    assert find_key(management_secret) is None
    assert find_key("sk-" + "x" * 43) is None
