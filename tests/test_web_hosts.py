"""Several web hosts: two gunicorn masters in separate process trees (the Procfile's web
command, as two machines would run it) on one PostgreSQL and one Redis share every limit.
A key's rate limit, a key's spend limit and an organization's balance hold across both:
nothing is multiplied by the number of hosts."""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.db import connection

from billing import live
from billing.ledger import credit
from billing.models import Account, UsageRecord
from billing.money import to_units
from billing.reconcile import ledger_is_consistent, reconcile
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from gateway.models import ApiKey
from tests.billing_helpers import OK_COST
from tests.procfile_server import procfile_web

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="needs PostgreSQL and Redis shared by two hosts"),
]
HELLO = [{"role": "user", "content": "Say hello"}]


def key_with(org, **limits) -> str:
    row, secret = mint_api_key(org)
    ApiKey.objects.filter(pk=row.pk).update(**limits)
    return secret


def booked_count(org, expected: int, timeout: float = 10) -> int:
    """Usage records of `org` once the hosts' last settlements are booked."""
    deadline = time.monotonic() + timeout
    while True:
        reconcile()
        count = UsageRecord.objects.filter(organization=org).count()
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_two_hosts_share_rate_limits_spend_limits_and_balances(catalog):
    with ExitStack() as hosts:
        bases = [hosts.enter_context(procfile_web(workers=1)) for _ in range(2)]

        def call(secret: str, i: int) -> requests.Response:
            # Every other request to the other host, on a new connection.
            return requests.post(f"{bases[i % 2]}/v1/chat/completions", timeout=30,
                                 headers={"Authorization": f"Bearer {secret}", "Connection": "close"},
                                 json={"model": "mock:ok", "messages": HELLO, "max_tokens": 3})

        # A 60-RPM key: 80 requests within the minute, half to each host.
        rated = create_organization("Rated", "rita@rated.example")
        credit(rated.pk, Decimal("100"))
        secret = key_with(rated, rpm_limit=60)
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [r.status_code for r in pool.map(lambda i: call(secret, i), range(80))]
        assert (statuses.count(200), statuses.count(429)) == (60, 20)

        # A key whose spend limit covers three requests, asked alternately on both hosts.
        spender = create_organization("Spender", "sam@spender.example")
        credit(spender.pk, Decimal("100"))
        secret = key_with(spender, spend_limit=Decimal("0.00002"))
        answers = [call(secret, i) for i in range(8)]
        assert [a.status_code for a in answers] == [200] * 3 + [429] * 5
        assert all(a.json()["error"]["code"] == "insufficient_quota" for a in answers[3:])

        # A balance covering ten requests, asked forty times at once across both hosts.
        thrifty = create_organization("Thrifty", "tess@thrifty.example")
        credit(thrifty.pk, 10 * OK_COST)
        secret = key_with(thrifty)
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = [r.status_code for r in pool.map(lambda i: call(secret, i), range(40))]
        served = statuses.count(200)
        assert 1 <= served <= 10 and statuses.count(429) == 40 - served

        assert booked_count(rated, 60) == 60
        assert booked_count(spender, 3) == 3
        assert booked_count(thrifty, served) == served
    account = Account.objects.get(organization=thrifty)
    assert account.balance == 10 * OK_COST - served * OK_COST >= 0
    assert ledger_is_consistent(thrifty.pk) and ledger_is_consistent(rated.pk)
    assert Account.objects.get(organization=rated).balance == Decimal("100") - 60 * OK_COST
    snapshot = live.snapshot(thrifty.pk)  # the live store agrees with the ledger, to the picodollar
    assert (snapshot.balance, snapshot.pending, snapshot.held) == (to_units(account.balance), 0, 0)
