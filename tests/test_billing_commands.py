"""The operator commands for money, and prepaid codes."""

import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.ledger import BillingError, mint_code, redeem
from billing.models import Account, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_credit_and_show_balance(org):
    assert run("show_balance", "--tenant", org.slug) == "100\n"
    assert "balance 102.5 USD" in run("credit", "--tenant", org.slug, "2.50", "--note", "wire 42")
    assert run("show_balance", "--tenant", org.slug) == "102.5\n"
    entry = LedgerEntry.objects.filter(account__organization=org).first()
    assert (entry.kind, entry.amount, entry.note) == ("credit", Decimal("2.50"), "wire 42")


def test_show_balance_prints_exact_small_amounts(org):
    from billing.ledger import adjust

    adjust(org.pk, Decimal("-99.99999674"), note="test")
    assert run("show_balance", "--tenant", org.slug) == "0.00000326\n"


@pytest.mark.parametrize("amount", ["abc", "0", "-5", "1e400", "0.0000000000001", "NaN"])
def test_credit_refuses_bad_amounts(org, amount):
    with pytest.raises(CommandError):
        run("credit", "--tenant", org.slug, amount)
    assert Account.objects.get(organization=org).balance == Decimal("100")


def test_commands_refuse_unknown_tenants(db):
    for command in (["credit", "--tenant", "nope", "1"], ["show_balance", "--tenant", "nope"]):
        with pytest.raises(CommandError, match="no organization"):
            run(*command)


def test_reconcile_usage_reports_what_it_booked(db):
    assert run("reconcile_usage") == "reconciled 0 usage events\n"


def test_a_new_organization_starts_at_zero_unless_signup_credit_says_otherwise(db, settings):
    from console.tenancy.actions import create_organization

    assert Account.objects.get(organization=create_organization("Zero", "z@zero.example")).balance == 0
    settings.SIGNUP_CREDIT_USD = "5"
    assert Account.objects.get(organization=create_organization("Five", "f@five.example")).balance == 5


def test_a_code_is_redeemed_once(org, other_org):
    code = mint_code(Decimal("7.25"))
    entry = redeem(org.pk, code.code.lower())
    assert entry.kind == "redeem" and entry.amount == Decimal("7.25")
    with pytest.raises(BillingError, match="already been redeemed"):
        redeem(other_org.pk, code.code)
    with pytest.raises(BillingError, match="no such code"):
        redeem(org.pk, "MG-NOPE")
    assert Account.objects.get(organization=org).balance == Decimal("107.25")
    assert Account.objects.get(organization=other_org).balance == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises every writer anyway")
def test_concurrent_redemptions_spend_a_code_once(org, other_org):
    code = mint_code(Decimal("3"))
    barrier = threading.Barrier(8)
    outcomes = []

    def attempt(org_id):
        barrier.wait()
        try:
            redeem(org_id, code.code)
            outcomes.append("ok")
        except BillingError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=((org if i % 2 else other_org).pk,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1


def test_mint_codes_prints_one_redeemable_code_a_line(org):
    from billing.models import RedeemCode

    codes = run("mint_codes", "2.50", "--count", "3", "--note", "meetup").split()
    assert len(set(codes)) == 3 and all(code.startswith("MG-") for code in codes)
    assert set(RedeemCode.objects.values_list("code", flat=True)) == set(codes)
    redeem(org.pk, codes[0])
    assert run("show_balance", "--tenant", org.slug) == "102.5\n"


@pytest.mark.parametrize("args", [["abc"], ["0"], ["-1"], ["5", "--count", "0"], ["5", "--count", "1001"]])
def test_mint_codes_refuses_bad_input_and_mints_nothing(db, args):
    from billing.models import RedeemCode

    with pytest.raises(CommandError):
        run("mint_codes", *args)
    assert not RedeemCode.objects.exists()
