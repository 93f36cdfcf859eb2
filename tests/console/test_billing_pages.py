"""The billing page and redeeming codes: owners only."""

from decimal import Decimal

import pytest
from django.test import Client

from billing.ledger import balance_of, credit, mint_code
from billing.models import RedeemCode
from tests.console.test_usage import usage

pytestmark = pytest.mark.django_db


def test_the_owner_sees_the_balance_and_the_running_balance(as_alice, org):
    usage(org, prompt=8, completion=1)
    resp = as_alice.get("/billing/")
    assert resp.status_code == 200
    page = resp.content.decode()
    assert '<div class="value" id="balance">99.99999674</div>' in page
    assert '<td class="num amount">-0.00000326</td>' in page
    assert '<td class="num balance-after">99.99999674</td>' in page
    assert '<td class="num amount">+100</td>' in page
    assert '<td class="num balance-after">100</td>' in page
    # newest first
    assert page.index("99.99999674</td>") < page.index('balance-after">100</td>')
    assert "insufficient_quota" not in page


@pytest.mark.parametrize("who", ["as_bob", "as_dave"])
def test_it_requires_the_owner_role(who, request, org):
    browser = request.getfixturevalue(who)
    code = mint_code(Decimal("5"))
    assert browser.get("/billing/").status_code == 403
    assert browser.post("/billing/redeem/", {"code": code.code}).status_code == 403
    assert balance_of(org.pk) == Decimal("100")


def test_it_requires_a_login(org):
    for resp in (Client().get("/billing/"), Client().post("/billing/redeem/", {"code": "x"})):
        assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


def test_a_code_can_be_redeemed_once(as_alice, org, alice):
    code = mint_code(Decimal("5"))
    resp = as_alice.post("/billing/redeem/", {"code": code.code.lower()}, follow=True)
    assert resp.redirect_chain[-1][0] == "/billing/"
    page = resp.content.decode()
    assert "Redeemed 5 USD" in page and '<div class="value" id="balance">105</div>' in page
    assert RedeemCode.objects.get(pk=code.pk).redeemed_by == alice

    again = as_alice.post("/billing/redeem/", {"code": code.code}, follow=True).content.decode()
    assert "already been redeemed" in again
    assert balance_of(org.pk) == Decimal("105")


def test_an_unknown_code_is_an_error(as_alice, org):
    page = as_alice.post("/billing/redeem/", {"code": "MG-NOPE"}, follow=True).content.decode()
    assert "no such code" in page
    assert balance_of(org.pk) == Decimal("100")


def test_redeeming_needs_a_csrf_token(alice, org):
    code = mint_code(Decimal("5"))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/billing/redeem/", {"code": code.code}).status_code == 403
    assert RedeemCode.objects.get(pk=code.pk).redeemed_at is None


def test_redeeming_is_post_only(as_alice):
    assert as_alice.get("/billing/redeem/").status_code == 405


def test_another_orgs_balance_is_never_shown(as_alice, as_charlie, org, other_org):
    credit(other_org.pk, Decimal("4242.4242"), note="beta money")
    usage(org)  # alice's balance becomes 99.99999674
    alice_page = as_alice.get("/billing/").content.decode()
    assert "4242.4242" not in alice_page and "beta money" not in alice_page
    charlie_page = as_charlie.get("/billing/").content.decode()
    assert "4242.4242" in charlie_page
    assert "99.99999674" not in charlie_page and "test credit" not in charlie_page


def test_an_empty_balance_warns_of_refusals(as_charlie, other_org):
    page = as_charlie.get("/billing/").content.decode()
    assert "used up" in page and "insufficient_quota" in page


def test_a_low_balance_warns_of_refusals(as_charlie, other_org):
    credit(other_org.pk, Decimal("0.5"))
    page = as_charlie.get("/billing/").content.decode()
    assert "balance is low" in page and "insufficient_quota" in page
