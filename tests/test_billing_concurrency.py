"""Concurrent requests can never spend more than the balance."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from billing.ledger import credit
from billing.models import Account
from billing.reconcile import ledger_is_consistent, reconcile
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import OK_COST

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_parallel_requests_never_overdraw_a_balance_covering_ten(gateway_url, catalog):
    org = create_organization("Parallel Inc", "frank@parallel.example")
    _, secret = mint_api_key(org)
    credit(org.pk, 10 * OK_COST)
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0, timeout=30)

    def call(_):
        try:
            sdk.chat.completions.create(model="mock:ok", messages=[{"role": "user", "content": "Say hello"}],
                                        max_tokens=3)
            return "ok"
        except openai.RateLimitError as e:
            assert e.code == "insufficient_quota"
            return "refused"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(call, range(50)))

    reconcile()
    account = Account.objects.get(organization=org)
    succeeded = outcomes.count("ok")
    assert 1 <= succeeded <= 10
    assert outcomes.count("refused") == 50 - succeeded
    assert account.balance == 10 * OK_COST - succeeded * OK_COST
    assert account.balance >= -account.credit_limit
    assert ledger_is_consistent(org.pk)
