"""The API keys pages: create (secret shown once), list, rename, revoke, and who may do what."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import UsageDailyRollup
from gateway.keys.api_keys import find_key, hash_secret, mint_api_key
from gateway.models import ApiKey, CatalogModel, Provider

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'<code id="new-secret">(sk-[A-Za-z0-9_-]+)</code>')


@pytest.fixture
def models(db):
    demo = Provider.objects.create(slug="demo", protocol=Provider.Protocol.MOCK)
    for name, enabled in [("echo", True), ("big", True), ("retired", False)]:
        CatalogModel.objects.create(provider=demo, name=name, input_per_mtok=1, output_per_mtok=2, enabled=enabled)


def create(browser, **fields):
    return browser.post("/keys/new/", {"name": "backend", **fields})


def secret_of(resp) -> str:
    match = SECRET_RE.search(resp.content.decode())
    assert match, "the page shows no secret"
    return match.group(1)


def key_of(org, user, name="theirs", **kwargs):
    key, _ = mint_api_key(org, name=name, created_by=user, **kwargs)
    return key


def test_it_creates_a_key_and_shows_the_secret_once(as_alice, org, alice):
    resp = create(as_alice)
    assert resp.status_code == 200
    secret = secret_of(resp)
    page = resp.content.decode()
    assert '<button type="button" id="copy-secret">Copy</button>' in page
    assert "will not be shown again" in page
    assert "no-store" in resp["Cache-Control"]

    identity = find_key(secret)
    assert identity is not None and identity.organization_id == org.pk and not identity.revoked
    key = ApiKey.objects.get(pk=identity.key_id)
    assert key.name == "backend" and key.created_by == alice and key.kind == ApiKey.Kind.STANDARD
    assert key.secret_hash == hash_secret(secret) and key.prefix == secret[:10]
    assert secret not in [str(getattr(key, f.attname)) for f in ApiKey._meta.concrete_fields]

    # Never again: not on the list, the detail page, in the session or in a message.
    for url in ["/keys/", f"/keys/{key.pk}/"]:
        assert secret not in as_alice.get(url).content.decode()
    assert secret not in str(dict(as_alice.session.items()))


def test_the_list_offers_the_create_form(as_alice):
    page = as_alice.get("/keys/").content.decode()
    assert 'name="name"' in page and ">Create key</button>" in page
    assert 'action="/keys/new/"' in page and "csrfmiddlewaretoken" in page


def test_it_saves_allowed_models_expiry_and_spend_limit(as_alice, models):
    day = timezone.localdate() + timedelta(days=30)
    resp = create(as_alice, allowed_models=["demo:echo", "demo:big"], expires_on=day.isoformat(), spend_limit="12.50")
    key = ApiKey.objects.get(pk=find_key(secret_of(resp)).key_id)
    assert sorted(key.allowed_models) == ["demo:big", "demo:echo"]
    assert key.expires_at.date() == day and key.is_active()
    assert key.spend_limit == Decimal("12.5")


def test_the_list_shows_the_spend_of_the_period_and_when_it_resets(as_alice, org):
    daily, _ = mint_api_key(org, name="daily")
    ApiKey.objects.filter(pk=daily.pk).update(spend_limit=Decimal("3"), budget_period="daily")
    unlimited, _ = mint_api_key(org, name="unlimited")
    today = timezone.now().date()
    for key, day, cost in ((daily, today, "0.25"), (daily, today - timedelta(days=1), "2"), (unlimited, today, "1.5")):
        UsageDailyRollup.objects.create(organization=org, day=day, model="demo:echo", api_key=key, requests=1,
                                        cost=Decimal(cost))
    page = as_alice.get("/keys/").content.decode()

    def spend(key) -> str:
        row = re.search(rf'<tr data-key-prefix="{key.prefix}">(.*?)</tr>', page, re.S).group(1)
        return re.sub(r"<[^>]+>", "", re.search(r"<td[^>]*data-spend[^>]*>(.*?)</td>", row, re.S).group(1))

    tomorrow = today + timedelta(days=1)
    assert spend(daily) == f"0.25 / 3 USD · resets {tomorrow}"  # yesterday's 2 USD are another period's
    assert f'<time datetime="{tomorrow}T00:00:00+00:00">' in page
    assert spend(unlimited) == "1.5 USD"  # no period: all of it, never resets


def test_it_allows_every_model_and_no_limits_by_default(as_alice, models):
    key = ApiKey.objects.get(pk=find_key(secret_of(create(as_alice))).key_id)
    assert key.allowed_models == [] and key.expires_at is None and key.spend_limit is None


def test_it_offers_only_enabled_models(as_alice, models):
    page = as_alice.get("/keys/new/").content.decode()
    assert 'value="demo:echo"' in page and 'value="demo:retired"' not in page
    resp = create(as_alice, allowed_models=["demo:retired"])
    assert resp.status_code == 200 and "new-secret" not in resp.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("amount", ["abc", "0", "-5", "0.0000000000001", "9000000", "NaN"])
def test_it_rejects_a_bad_spend_limit(as_alice, amount):
    resp = create(as_alice, spend_limit=amount)
    page = resp.content.decode()
    assert resp.status_code == 200 and "new-secret" not in page and 'class="errorlist' in page
    assert not ApiKey.objects.exists()


def test_it_rejects_an_expiry_that_is_not_in_the_future(as_alice):
    resp = create(as_alice, expires_on=timezone.localdate().isoformat())
    assert "Choose a day after today." in resp.content.decode()
    assert not ApiKey.objects.exists()


def test_it_requires_a_name(as_alice):
    resp = as_alice.post("/keys/new/", {"name": "  "})
    assert resp.status_code == 200 and 'class="errorlist' in resp.content.decode()
    assert not ApiKey.objects.exists()


def test_it_lists_keys_of_the_org_only_newest_first(as_alice, org, other_org, alice):
    older = key_of(org, alice, name="older")
    ApiKey.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=2))
    newer = key_of(org, alice, name="newer")
    foreign = key_of(other_org, None, name="foreign")
    page = as_alice.get("/keys/").content.decode()
    assert f'data-key-prefix="{newer.prefix}"' in page and f'data-key-prefix="{older.prefix}"' in page
    assert f"{newer.prefix}…" in page and "alice@alpha.example" in page and "never" in page
    assert page.index(newer.prefix) < page.index(older.prefix)
    assert f'href="/keys/{newer.pk}/"' in page
    assert foreign.prefix not in page and "foreign" not in page


def test_it_shows_each_status(as_alice, org, alice):
    key_of(org, alice, name="live")
    key_of(org, alice, name="old", expires_at=timezone.now() - timedelta(minutes=1))
    gone = key_of(org, alice, name="gone")
    ApiKey.objects.filter(pk=gone.pk).update(revoked_at=timezone.now())
    page = as_alice.get("/keys/").content.decode()
    for status in ["active", "expired", "revoked"]:
        assert f">{status}</span>" in page
    assert page.count(">Revoke</button>") == 2  # not for the revoked key


def test_it_shows_an_empty_state(as_alice):
    page = as_alice.get("/keys/").content.decode()
    assert 'class="empty"' in page and "No API keys yet" in page and "<table" not in page


def test_it_hides_playground_keys(as_alice, org, alice):
    playground = key_of(org, alice, name="console playground")
    ApiKey.objects.filter(pk=playground.pk).update(kind=ApiKey.Kind.PLAYGROUND)
    assert playground.prefix not in as_alice.get("/keys/").content.decode()
    assert as_alice.get(f"/keys/{playground.pk}/").status_code == 404
    assert as_alice.post(f"/keys/{playground.pk}/rename/", {"name": "x"}).status_code == 404
    assert as_alice.post(f"/keys/{playground.pk}/revoke/").status_code == 404
    playground.refresh_from_db()
    assert playground.revoked_at is None and playground.name == "console playground"


def test_it_shows_details(as_alice, org, alice):
    key = key_of(org, alice, name="reports", allowed_models=["demo:echo"])
    page = as_alice.get(f"/keys/{key.pk}/").content.decode()
    assert "reports" in page and f"{key.prefix}…" in page and "demo:echo" in page
    assert ">Revoke</button>" in page and f'action="/keys/{key.pk}/rename/"' in page


def test_it_renames(as_alice, org, alice):
    key = key_of(org, alice, name="old name")
    resp = as_alice.post(f"/keys/{key.pk}/rename/", {"name": "new name"})
    assert resp.status_code == 302 and resp["Location"] == f"/keys/{key.pk}/"
    key.refresh_from_db()
    assert key.name == "new name"


def test_it_refuses_an_empty_name_on_rename(as_alice, org, alice):
    key = key_of(org, alice, name="keep")
    assert as_alice.post(f"/keys/{key.pk}/rename/", {"name": ""}).status_code == 400
    key.refresh_from_db()
    assert key.name == "keep"


def test_it_revokes_at_once(as_alice, org, alice):
    key, secret = mint_api_key(org, name="leaked", created_by=alice)
    assert not find_key(secret).revoked  # now cached, as on the request path
    resp = as_alice.post(f"/keys/{key.pk}/revoke/")
    assert resp.status_code == 302 and resp["Location"] == "/keys/"
    assert find_key(secret).revoked
    page = as_alice.get("/keys/").content.decode()
    assert ">revoked</span>" in page and secret not in page


def test_revoke_needs_a_post(as_alice, org, alice):
    key = key_of(org, alice)
    assert as_alice.get(f"/keys/{key.pk}/revoke/").status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_member_can_create_and_revoke_own_key(as_bob, bob):
    secret = secret_of(create(as_bob))
    key = ApiKey.objects.get(pk=find_key(secret).key_id)
    assert key.created_by == bob
    assert as_bob.post(f"/keys/{key.pk}/rename/", {"name": "mine"}).status_code == 302
    assert as_bob.post(f"/keys/{key.pk}/revoke/").status_code == 302
    assert find_key(secret).revoked


def test_a_member_cannot_change_others_keys(as_bob, org, alice):
    key = key_of(org, alice, name="alice's")
    page = as_bob.get(f"/keys/{key.pk}/").content.decode()
    assert ">Revoke</button>" not in page and "/rename/" not in page
    assert ">Revoke</button>" not in as_bob.get("/keys/").content.decode()
    assert as_bob.post(f"/keys/{key.pk}/rename/", {"name": "bob's now"}).status_code == 403
    assert as_bob.post(f"/keys/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.name == "alice's" and key.revoked_at is None


def test_an_admin_can_manage_a_members_key(as_dave, org, bob):
    key = key_of(org, bob, name="bob's")
    assert as_dave.post(f"/keys/{key.pk}/rename/", {"name": "renamed by dave"}).status_code == 302
    assert as_dave.post(f"/keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.name == "renamed by dave" and key.revoked_at is not None


@pytest.mark.parametrize("method,suffix", [("get", ""), ("post", "rename/"), ("post", "revoke/")])
def test_it_checks_the_organization(as_charlie, org, alice, method, suffix):
    key = key_of(org, alice, name="alpha only")
    resp = getattr(as_charlie, method)(f"/keys/{key.pk}/{suffix}", {"name": "pwned"} if method == "post" else None)
    assert resp.status_code == 404
    key.refresh_from_db()
    assert key.name == "alpha only" and key.revoked_at is None


@pytest.mark.parametrize("method,url", [
    ("get", "/keys/"), ("get", "/keys/new/"), ("post", "/keys/new/"), ("get", "/keys/1/"),
    ("post", "/keys/1/rename/"), ("post", "/keys/1/revoke/"),
])
def test_it_requires_a_login(db, method, url):
    resp = getattr(Client(), method)(url)
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


def test_it_requires_a_csrf_token(org, alice):
    key = key_of(org, alice, name="safe")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/keys/new/", {"name": "sneaky"}).status_code == 403
    assert browser.post(f"/keys/{key.pk}/revoke/").status_code == 403
    assert browser.post(f"/keys/{key.pk}/rename/", {"name": "sneaky"}).status_code == 403
    key.refresh_from_db()
    assert key.name == "safe" and key.revoked_at is None
    assert ApiKey.objects.count() == 1
