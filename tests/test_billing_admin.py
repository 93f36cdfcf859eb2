"""The billing admin: staff move money only through billing.ledger, ledger rows stay
immutable, and everything sits behind the admin's login, permissions and CSRF."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.ledger import mint_code, redeem
from billing.models import Account, LedgerEntry, RedeemCode, UsageRecord


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # admin_user and the other test users get a hashed password; PBKDF2 costs ~0.5 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def account(org):
    return Account.objects.get(organization=org)


def balance_url(account):
    return reverse("admin:billing_account_balance", args=[account.pk])


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def make_usage(org):
    return UsageRecord.objects.create(
        request_id="req-admin-1", organization=org, model="mock:ok", status="ok", http_status=200,
        basis=UsageRecord.Basis.PROVIDER, prompt_tokens=10, completion_tokens=5,
        input_per_mtok=Decimal("0.27"), output_per_mtok=Decimal("1.10"), cost=Decimal("0.0000082"),
        latency_ms=12, created_at=timezone.now(),
    )


def test_superuser_can_open_every_billing_admin_page(admin_client, org, account):
    make_usage(org)
    code = mint_code(Decimal("5"))
    entry = LedgerEntry.objects.filter(account=account).first()
    usage = UsageRecord.objects.get()
    pages = [
        reverse("admin:app_list", args=["billing"]),
        reverse("admin:billing_account_changelist") + "?q=alpha",
        reverse("admin:billing_account_change", args=[account.pk]),
        balance_url(account),
        reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={account.pk}",
        reverse("admin:billing_ledgerentry_changelist") + "?q=test+credit&kind__exact=credit",
        reverse("admin:billing_ledgerentry_change", args=[entry.pk]),
        reverse("admin:billing_usagerecord_changelist") + "?q=req-admin&status=ok",
        reverse("admin:billing_usagerecord_change", args=[usage.pk]),
        reverse("admin:billing_redeemcode_changelist"),
        reverse("admin:billing_redeemcode_add"),
        reverse("admin:billing_redeemcode_change", args=[code.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url

    changelist = admin_client.get(reverse("admin:billing_account_changelist")).content.decode()
    assert "Alpha Labs" in changelist and ">100<" in changelist
    change = admin_client.get(reverse("admin:billing_account_change", args=[account.pk])).content.decode()
    assert balance_url(account) in change
    assert 'name="balance"' not in change and 'name="ledger_head"' not in change
    assert 'name="credit_limit"' in change
    ledger_page = admin_client.get(reverse("admin:billing_ledgerentry_changelist")).content.decode()
    assert "test credit" in ledger_page and "Alpha Labs" in ledger_page


def test_accounts_cannot_be_added_or_deleted(admin_client, account):
    assert admin_client.get(reverse("admin:billing_account_add")).status_code == 403
    assert admin_client.post(reverse("admin:billing_account_delete", args=[account.pk]), {"post": "yes"}).status_code == 403
    assert Account.objects.filter(pk=account.pk).exists()


def test_credit_limit_is_set_through_the_ledger_action(admin_client, account):
    url = reverse("admin:billing_account_change", args=[account.pk])
    response = admin_client.post(url, {"credit_limit": "25.5", "balance": "999999", "ledger_head": "0"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.credit_limit == Decimal("25.5")
    assert account.balance == Decimal("100")  # read-only fields ignored
    assert account.ledger_head == LedgerEntry.objects.filter(account=account).first().pk

    response = admin_client.post(url, {"credit_limit": "-1"})
    assert response.status_code == 200
    assert "zero or more" in response.content.decode()
    account.refresh_from_db()
    assert account.credit_limit == Decimal("25.5")


def test_credit_through_the_form_books_one_entry_by_that_user(admin_client, admin_user, account):
    form = admin_client.get(balance_url(account))
    reference = re.search(r'name="reference" value="([^"]+)"', form.content.decode()).group(1)
    before = LedgerEntry.objects.count()

    data = {"kind": "credit", "amount": "12.34", "note": "wire transfer 42", "reference": reference}
    response = admin_client.post(balance_url(account), data, follow=True)

    assert LedgerEntry.objects.count() == before + 1
    entry = LedgerEntry.objects.first()
    assert (entry.kind, entry.amount, entry.balance_after) == ("credit", Decimal("12.34"), Decimal("112.34"))
    assert entry.created_by == admin_user and entry.note == "wire transfer 42" and entry.reference == reference
    account.refresh_from_db()
    assert account.balance == Decimal("112.34") and account.ledger_head == entry.pk
    assert any("New balance: 112.34 USD" in m for m in messages_of(response))

    # The same form submitted twice books once.
    again = admin_client.post(balance_url(account), data, follow=True)
    assert LedgerEntry.objects.count() == before + 1
    assert any("already been booked" in m for m in messages_of(again))


def test_adjustment_without_note_is_refused(admin_client, account):
    before = LedgerEntry.objects.count()
    response = admin_client.post(balance_url(account), {"kind": "adjustment", "amount": "-5", "note": "  "})
    assert response.status_code == 200
    assert "needs a note" in response.content.decode()
    assert response.context["form"].errors["note"]
    assert LedgerEntry.objects.count() == before


def test_negative_adjustment(admin_client, admin_user, account):
    response = admin_client.post(balance_url(account), {"kind": "adjustment", "amount": "-30.5", "note": "refund"},
                                 follow=True)
    entry = LedgerEntry.objects.first()
    assert (entry.kind, entry.amount, entry.balance_after) == ("adjustment", Decimal("-30.5"), Decimal("69.5"))
    assert entry.created_by == admin_user
    assert Account.objects.get(pk=account.pk).balance == Decimal("69.5")
    assert any("New balance: 69.5 USD" in m for m in messages_of(response))


@pytest.mark.parametrize("kind,amount", [
    ("credit", "abc"), ("credit", "0.0000000000001"), ("adjustment", "0.0000000000001"), ("credit", "-5"),
    ("credit", "0"), ("adjustment", "0"), ("credit", "NaN"), ("credit", "Infinity"), ("credit", "1e30"),
    ("credit", ""),
])
def test_invalid_amount_shows_an_error_and_books_nothing(admin_client, account, kind, amount):
    before = LedgerEntry.objects.count()
    response = admin_client.post(balance_url(account), {"kind": kind, "amount": amount, "note": "why"})
    assert response.status_code == 200
    assert response.context["form"].errors["amount"]
    assert "errornote" in response.content.decode()
    assert LedgerEntry.objects.count() == before
    assert Account.objects.get(pk=account.pk).balance == Decimal("100")


def test_forged_reference_is_refused(admin_client, account):
    before = LedgerEntry.objects.count()
    response = admin_client.post(balance_url(account), {"kind": "credit", "amount": "1", "reference": "usage:req-1"})
    assert response.status_code == 200 and response.context["form"].errors["reference"]
    assert LedgerEntry.objects.count() == before


def test_ledger_entries_cannot_be_changed_or_deleted(admin_client, account):
    entry = LedgerEntry.objects.filter(account=account).first()
    change_url = reverse("admin:billing_ledgerentry_change", args=[entry.pk])

    page = admin_client.get(change_url).content.decode()
    assert 'name="amount"' not in page and 'name="_save"' not in page
    assert admin_client.post(change_url, {"amount": "1000", "note": "x"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    assert admin_client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403

    changelist = reverse("admin:billing_ledgerentry_changelist")
    response = admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert "delete_selected" not in admin_client.get(changelist).content.decode()
    entry.refresh_from_db()
    assert entry.amount == Decimal("100") and entry.note == "test credit"
    assert response.status_code in (200, 302)


def test_usage_records_are_read_only(admin_client, org):
    usage = make_usage(org)
    assert admin_client.post(reverse("admin:billing_usagerecord_change", args=[usage.pk]), {"cost": "0"}).status_code == 403
    assert admin_client.post(reverse("admin:billing_usagerecord_delete", args=[usage.pk]), {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_usagerecord_add")).status_code == 403
    assert UsageRecord.objects.get().cost == Decimal("0.0000082")


def test_redeem_code_minted_through_the_add_form(admin_client, admin_user):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = admin_client.post(reverse("admin:billing_redeemcode_add"), {
        "amount": "20", "note": "conference", "expires_at_0": expires.strftime("%Y-%m-%d"),
        "expires_at_1": expires.strftime("%H:%M:%S"), "code": "MG-CHOSEN", "created_by": "",
    }, follow=True)
    code = RedeemCode.objects.get()
    assert re.fullmatch(r"MG-[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", code.code)
    assert code.amount == Decimal("20") and code.note == "conference" and code.expires_at == expires
    assert code.created_by == admin_user and code.redeemed_at is None
    assert any(code.code in m for m in messages_of(response))

    # Existing codes are read-only.
    change_url = reverse("admin:billing_redeemcode_change", args=[code.pk])
    assert admin_client.post(change_url, {"amount": "1000"}).status_code == 403
    assert RedeemCode.objects.get().amount == Decimal("20")


@pytest.mark.parametrize("amount", ["abc", "-1", "0", "0.0000000000001"])
def test_minting_refuses_bad_amounts(admin_client, amount):
    response = admin_client.post(reverse("admin:billing_redeemcode_add"), {"amount": amount, "note": ""})
    assert response.status_code == 200 and response.context["adminform"].form.errors["amount"]
    assert not RedeemCode.objects.exists()


def test_only_unredeemed_codes_can_be_deleted(admin_client, org):
    unused, used = mint_code(Decimal("1")), mint_code(Decimal("2"))
    redeem(org.pk, used.code)

    assert admin_client.post(reverse("admin:billing_redeemcode_delete", args=[used.pk]), {"post": "yes"}).status_code == 403
    changelist = reverse("admin:billing_redeemcode_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [unused.pk, used.pk], "post": "yes"}
    assert admin_client.post(changelist, bulk).status_code == 403
    assert RedeemCode.objects.count() == 2

    assert admin_client.post(reverse("admin:billing_redeemcode_delete", args=[unused.pk]), {"post": "yes"}).status_code == 302
    assert list(RedeemCode.objects.values_list("pk", flat=True)) == [used.pk]


def test_non_staff_is_sent_to_login(org, account):
    user = get_user_model().objects.create_user("plain", password="pw-not-staff-123")
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(user)
    for client in (anonymous, logged_in):
        for url in (reverse("admin:billing_account_changelist"), balance_url(account),
                    reverse("admin:billing_ledgerentry_changelist")):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
        response = client.post(balance_url(account), {"kind": "credit", "amount": "5"})
        assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).balance == Decimal("100")


def test_staff_needs_permissions_to_move_money(account):
    user = get_user_model().objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_account"))
    staff = Client()
    staff.force_login(user)
    change_page = staff.get(reverse("admin:billing_account_change", args=[account.pk])).content.decode()
    assert balance_url(account) not in change_page
    assert staff.post(balance_url(account), {"kind": "credit", "amount": "5"}).status_code == 403

    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_account", "add_ledgerentry"]))
    staff = Client()
    staff.force_login(get_user_model().objects.get(pk=user.pk))
    assert balance_url(account) in staff.get(reverse("admin:billing_account_change", args=[account.pk])).content.decode()
    assert staff.post(balance_url(account), {"kind": "credit", "amount": "5"}).status_code == 302
    assert Account.objects.get(pk=account.pk).balance == Decimal("105")


def test_the_balance_form_requires_csrf(admin_user, account):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(balance_url(account), {"kind": "credit", "amount": "5"}).status_code == 403
    assert Account.objects.get(pk=account.pk).balance == Decimal("100")
