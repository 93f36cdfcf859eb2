"""Request logs carry prompt and completion text only where an operator turned it on, and
requests refused before metering are counted too."""

import logging

import openai
import pytest

from console.tenancy.models import Organization
from gateway.keys.api_keys import mint_api_key
from tests.live_threads import wait_until_idle
from tests.test_observability import metrics_on, request_lines, scrape, value  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)
PROMPT = [{"role": "user", "content": "the secret recipe is saffron"}]


def test_text_is_not_logged_by_default(client, caplog):
    caplog.set_level(logging.INFO, logger="mixgateway.requests")
    client.chat.completions.create(model="mock:ok", messages=PROMPT)
    line = request_lines(caplog)[-1]
    assert "prompt" not in line and "completion" not in line
    assert "saffron" not in caplog.text and "Hello from upstream" not in caplog.text


def test_an_operator_can_log_an_organizations_text(gateway_url, catalog, org, caplog):
    Organization.objects.filter(pk=org.pk).update(log_content=True)
    _, secret = mint_api_key(org)
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    caplog.set_level(logging.INFO, logger="mixgateway.requests")
    sdk.chat.completions.create(model="mock:ok", messages=PROMPT)
    list(sdk.chat.completions.create(model="mock:ok", messages=PROMPT, stream=True))
    wait_until_idle()  # a stream is settled and logged after its last event
    plain, streamed = request_lines(caplog)[-2:]
    for line in (plain, streamed):
        assert line["prompt"] == PROMPT and line["completion"] == "Hello from upstream"


def test_requests_refused_before_metering_are_counted(metrics_on, gateway_url, catalog):
    before = value(scrape(), "mixgateway_requests_total", model="", status="rejected", code="invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway_url, api_key="sk-" + "x" * 43, max_retries=0).models.list()
    after = value(scrape(), "mixgateway_requests_total", model="", status="rejected", code="invalid_api_key")
    assert after == before + 1
