"""Per-key requests-per-minute and tokens-per-minute limits, in OpenAI's terms."""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from django.conf import settings
from django.db import connection

from gateway.keys.api_keys import mint_api_key
from gateway.models import ApiKey
from tests.procfile_server import procfile_web

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
HELLO = [{"role": "user", "content": "Say hello"}]


def limited_key(org, **limits) -> str:
    key, secret = mint_api_key(org)
    ApiKey.objects.filter(pk=key.pk).update(**limits)
    return secret


def sdk(gateway_url, secret):
    return openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)


def test_requests_beyond_the_rpm_limit_get_429_with_retry_after(gateway_url, catalog, org):
    client = sdk(gateway_url, limited_key(org, rpm_limit=5))
    raw = client.chat.completions.with_raw_response.create(model="demo:echo", messages=HELLO)
    assert raw.headers["x-ratelimit-limit-requests"] == "5"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    for _ in range(4):
        client.chat.completions.create(model="demo:echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="demo:echo", messages=HELLO)
    assert err.value.code == "rate_limit_exceeded" and err.value.type == "requests"
    headers = err.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 61
    assert headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_beyond_the_tpm_limit_get_429(gateway_url, catalog, org):
    client = sdk(gateway_url, limited_key(org, tpm_limit=20))
    client.chat.completions.create(model="mock:ok", messages=HELLO)  # 11 tokens
    client.chat.completions.create(model="mock:ok", messages=HELLO)  # 22: over, but it was admitted
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="mock:ok", messages=HELLO)
    assert err.value.type == "tokens" and err.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_limits_are_per_key(gateway_url, catalog, org):
    limited = sdk(gateway_url, limited_key(org, rpm_limit=1))
    other = sdk(gateway_url, limited_key(org))
    limited.chat.completions.create(model="demo:echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError):
        limited.chat.completions.create(model="demo:echo", messages=HELLO)
    other.chat.completions.create(model="demo:echo", messages=HELLO)


@pytest.mark.slow
@pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                    reason="needs PostgreSQL and Redis shared by two gunicorn workers")
def test_a_60_rpm_key_passes_exactly_60_of_1000_requests_across_two_workers(catalog, org):
    secret = limited_key(org, rpm_limit=60)
    with procfile_web(workers=2) as base:
        url = f"{base}/v1/chat/completions"

        def call(_):
            # A new connection each time, so the requests spread over both workers.
            return requests.post(url, headers={"Authorization": f"Bearer {secret}", "Connection": "close"},
                                 json={"model": "demo:echo", "messages": HELLO}, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(call, range(1000)))
    assert statuses.count(200) == 60
    assert statuses.count(429) == 940


def test_a_keys_spend_limit_stops_it_before_the_limit_is_passed(gateway_url, catalog, org):
    from decimal import Decimal

    from tests.billing_helpers import OK_COST

    client = sdk(gateway_url, limited_key(org, spend_limit=Decimal("0.00002")))
    succeeded = 0
    with pytest.raises(openai.RateLimitError) as err:
        for _ in range(10):
            client.chat.completions.create(model="mock:ok", messages=HELLO, max_tokens=3)
            succeeded += 1
    assert err.value.code == "insufficient_quota" and "spend limit" in err.value.body["message"]
    assert succeeded == 3 and succeeded * OK_COST <= Decimal("0.00002")
    # Other keys of the organization are not affected.
    sdk(gateway_url, limited_key(org)).chat.completions.create(model="mock:ok", messages=HELLO)
