"""A key's limits in the console: requests and tokens per minute, spend limit and budget
period, set when the key is made and changed later (audited), and shown on the list."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from console.tenancy.models import AuditEvent
from gateway.keys.api_keys import create_api_key, find_key
from gateway.models import ApiKey
from tests.console.test_keys import models, secret_of  # noqa: F401  (models: a fixture)
from tests.console.test_usage import usage

pytestmark = pytest.mark.django_db


def created_key(resp) -> ApiKey:
    return ApiKey.objects.get(pk=find_key(secret_of(resp)).key_id)


def errors_of(resp) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', resp.content.decode(), re.S))


def test_it_creates_a_key_with_rate_limits_and_a_budget_period(as_alice):
    resp = as_alice.post("/keys/new/", {"name": "limited", "rpm_limit": "60", "tpm_limit": "100000",
                                        "spend_limit": "5", "budget_period": "daily"})
    key = created_key(resp)
    assert (key.rpm_limit, key.tpm_limit, key.spend_limit, key.budget_period) == (60, 100000, Decimal("5"), "daily")
    created = AuditEvent.objects.get(action="key.created")
    assert created.details["rpm_limit"] == 60 and created.details["budget_period"] == "daily"


def test_the_form_offers_every_limit(as_alice):
    page = as_alice.get("/keys/new/").content.decode()
    for field in ("rpm_limit", "tpm_limit", "spend_limit", "budget_period"):
        assert f'name="{field}"' in page
    for period in ("none", "daily", "weekly", "monthly"):
        assert f'value="{period}"' in page


@pytest.mark.parametrize("fields,says", [
    ({"rpm_limit": "0"}, "Enter at least 1, or leave it empty for no limit."),
    ({"tpm_limit": "-3"}, "Enter at least 1, or leave it empty for no limit."),
    ({"rpm_limit": "ten"}, "Enter a whole number, or leave it empty for no limit."),
    ({"rpm_limit": "99999999999"}, "less than or equal to"),
    ({"budget_period": "hourly"}, "Select a valid choice."),
    ({"budget_period": "weekly"}, "A budget period needs a spend limit"),
])
def test_it_refuses_a_bad_limit_and_says_why(as_alice, fields, says):
    resp = as_alice.post("/keys/new/", {"name": "bad", **fields})
    assert resp.status_code == 200 and "new-secret" not in resp.content.decode()
    assert says in errors_of(resp)
    assert not ApiKey.objects.exists()


def test_the_list_shows_models_limits_and_spend(as_alice, org, alice):
    key, _ = create_api_key(org, name="capped", created_by=alice, allowed_models=["demo:echo"], rpm_limit=60,
                            tpm_limit=5000, spend_limit=Decimal("2"), budget_period="monthly")
    usage(org, key=key, prompt=1000, completion=1000)  # 0.00137 USD at the test prices
    page = as_alice.get("/keys/").content.decode()
    row = re.search(rf'<tr data-key-prefix="{key.prefix}">(.*?)</tr>', page, re.S).group(1)
    assert "<code>demo:echo</code>" in row
    assert "60 RPM · 5000 TPM" in row and "budget per UTC month" in row
    spend = re.search(r"<td[^>]*data-spend[^>]*>(.*?)</td>", row, re.S).group(1)
    assert "0.00137 / 2 USD" in spend


def test_a_key_used_a_moment_ago_was_used_just_now(as_alice, org, alice):
    key, _ = create_api_key(org, name="fresh", created_by=alice)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(seconds=5))
    for url in ("/keys/", f"/keys/{key.pk}/"):
        page = as_alice.get(url).content.decode()
        assert "just now" in page and "0\xa0minutes" not in page and "0 minutes" not in page


def test_it_changes_the_limits_and_audits_the_change(as_alice, org, alice):
    key, secret = create_api_key(org, name="grow", created_by=alice, rpm_limit=10)
    resp = as_alice.post(f"/keys/{key.pk}/limits/", {"rpm_limit": "120", "tpm_limit": "", "spend_limit": "$3.50",
                                                     "budget_period": "weekly"})
    assert resp.status_code == 302
    key.refresh_from_db()
    assert (key.rpm_limit, key.tpm_limit, key.spend_limit, key.budget_period) == (120, None, Decimal("3.5"), "weekly")
    assert find_key(secret).rpm_limit == 120  # the key cache forgot the old limits
    changed = AuditEvent.objects.get(action="key.updated")
    assert changed.details["old_rpm_limit"] == 10 and changed.details["rpm_limit"] == 120
    audit_page = as_alice.get("/audit/").content.decode()
    assert "10 requests per minute → 120 requests per minute" in audit_page


def test_it_shows_limit_errors_on_the_keys_page(as_alice, org, alice):
    key, _ = create_api_key(org, name="steady", created_by=alice, rpm_limit=10)
    resp = as_alice.post(f"/keys/{key.pk}/limits/", {"rpm_limit": "0"})
    assert resp.status_code == 400 and "Enter at least 1" in errors_of(resp)
    key.refresh_from_db()
    assert key.rpm_limit == 10 and not AuditEvent.objects.filter(action="key.updated").exists()


def test_a_member_cannot_change_the_limits_of_anothers_key(as_bob, org, alice):
    key, _ = create_api_key(org, name="alice's", created_by=alice, rpm_limit=10)
    assert "/limits/" not in as_bob.get(f"/keys/{key.pk}/").content.decode()
    assert as_bob.post(f"/keys/{key.pk}/limits/", {"rpm_limit": "1000"}).status_code == 403
    key.refresh_from_db()
    assert key.rpm_limit == 10


def test_it_checks_the_organization(as_charlie, org, alice):
    key, _ = create_api_key(org, name="alpha only", created_by=alice, rpm_limit=10)
    assert as_charlie.post(f"/keys/{key.pk}/limits/", {"rpm_limit": "1000"}).status_code == 404
    key.refresh_from_db()
    assert key.rpm_limit == 10


def test_a_revoked_keys_limits_stay(as_alice, org, alice):
    key, _ = create_api_key(org, name="gone", created_by=alice, rpm_limit=10)
    as_alice.post(f"/keys/{key.pk}/revoke/")
    resp = as_alice.post(f"/keys/{key.pk}/limits/", {"rpm_limit": "1000"})
    assert resp.status_code == 400 and "its limits can no longer change" in resp.content.decode()
    key.refresh_from_db()
    assert key.rpm_limit == 10


def test_a_model_no_longer_enabled_stays_allowed_when_the_limits_change(as_alice, org, alice, models):
    key, _ = create_api_key(org, name="narrow", created_by=alice, allowed_models=["demo:retired"])
    page = as_alice.get(f"/keys/{key.pk}/").content.decode()
    assert re.search(r'<input[^>]*value="demo:retired"[^>]*checked', page)
    resp = as_alice.post(f"/keys/{key.pk}/limits/", {"allowed_models": ["demo:retired"], "rpm_limit": "5"})
    assert resp.status_code == 302
    key.refresh_from_db()
    assert key.allowed_models == ["demo:retired"] and key.rpm_limit == 5
