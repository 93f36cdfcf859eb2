"""Every failure mode of /v1/responses, as the openai SDK sees it, and what it costs: an
upstream that fails before answering is the error table's status and costs nothing; a
stream cut after its first byte ends in response.failed (never completed) and is charged
what was relayed, exactly as the same cut chat stream is."""

from decimal import Decimal

import openai
import pytest

from tests.billing_helpers import booked
from tests.responses_helpers import upstreams  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("model, status, code", [
    ("mock:fail-400", 400, "invalid_value"),
    ("mock:fail-500", 502, "upstream_error"),
    ("mock:slow", 504, "upstream_timeout"),
    ("claude:claude-bad-request", 400, "invalid_request"),
    ("google:gemini-server-error", 502, "upstream_error"),
])
def test_an_upstream_failure_is_the_error_tables_and_costs_nothing(client, upstreams, model, status, code):
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as err:
            answer = client.responses.create(model=model, input="Say hello", stream=stream)
            list(answer)
        assert (err.value.status_code, err.value.code) == (status, code)
        record = booked(err.value.response.headers["x-request-id"])
        assert record.status == "upstream_error" and record.cost == 0


def chat_cost_of_the_same_cut(client, model) -> Decimal:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], stream=True)
    with pytest.raises(openai.APIError):  # the chat stream's error event
        list(raw.parse())
    return booked(raw.headers["x-request-id"]).cost


@pytest.mark.parametrize("model", ["mock:cut-mid-stream", "mock:error-event", "claude:claude-error-event",
                                   "google:gemini-cut"])
def test_a_cut_stream_ends_in_response_failed_and_is_charged_as_chat_is(client, upstreams, model):
    raw = client.responses.with_raw_response.create(model=model, input="Say hello", stream=True)
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.completed" not in kinds and "response.output_text.delta" in kinds
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.error.message
    assert failed.id == events[0].response.id
    record = booked(raw.headers["x-request-id"])
    assert record.status == "upstream_error" and record.basis == "partial" and record.completion_tokens > 0
    assert record.cost == chat_cost_of_the_same_cut(client, model) > 0
