"""Stored responses: previous_response_id continues a conversation, GET and DELETE by id,
`store: false` keeps nothing, other organizations get 404, retention deletes old ones."""

from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from billing.retention import prune_usage
from gateway.keys.api_keys import mint_api_key
from gateway.models import StoredResponse
from tests.responses_helpers import upstreams  # noqa: F401


def sent_messages(upstreams) -> list[dict]:
    return upstreams["openai"].requests[-1]["body"]["messages"]


@pytest.mark.django_db(transaction=True)
def test_a_stored_conversation_continues_and_can_be_read_and_deleted(client, upstreams):
    first = client.responses.create(model="mock:ok", input="Say hello", instructions="Be brief.",
                                    metadata={"run": "1"})
    streamed = list(client.responses.create(model="mock:echo-request", previous_response_id=first.id,
                                            input=[{"role": "user", "content": "And again"}], stream=True))
    second = streamed[-1].response
    # Instructions are the request's own, as OpenAI has it: not carried over.
    assert sent_messages(upstreams) == [{"role": "user", "content": "Say hello"},
                                        {"role": "assistant", "content": "Hello from upstream"},
                                        {"role": "user", "content": "And again"}]
    third = client.responses.create(model="mock:echo-request", previous_response_id=second.id, input="Once more")
    assert [m["role"] for m in sent_messages(upstreams)] == ["user", "assistant", "user", "assistant", "user"]
    assert third.previous_response_id == second.id
    items = client.responses.input_items.list(third.id, order="asc")
    assert [(i.type, i.role) for i in items.data] == [("message", r) for r in ("user", "assistant", "user",
                                                                                "assistant", "user")]
    assert items.data[0].content[0].text == "Say hello" and all(i.id for i in items.data)
    newest = client.responses.input_items.list(third.id, limit=2)
    assert [i.content[0].text for i in newest.data] == ["Once more", second.output_text] and newest.has_more

    got = client.responses.retrieve(first.id)
    assert got.model_dump() == first.model_dump()
    assert got.usage.model_extra["cost"] == first.usage.model_extra["cost"] and got.metadata == {"run": "1"}
    assert client.responses.retrieve(second.id).output_text == second.output_text  # a stream is stored too

    deleted = client.responses.delete(first.id)  # the SDK answers None; the wire has the object
    assert deleted is None and not StoredResponse.objects.filter(response_id=first.id).exists()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="mock:ok", previous_response_id=first.id, input="Hi")
    assert (err.value.code, err.value.param) == ("previous_response_not_found", "previous_response_id")


@pytest.mark.django_db(transaction=True)
def test_store_false_keeps_nothing(client, upstreams):
    whole = client.responses.create(model="mock:ok", input="Say hello", store=False)
    streamed = list(client.responses.create(model="mock:ok", input="Say hello", store=False, stream=True))
    assert whole.store is False and streamed[-1].response.store is False
    assert not StoredResponse.objects.exists()
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="mock:ok", previous_response_id=whole.id, input="Hi")
    assert err.value.code == "previous_response_not_found"


@pytest.mark.django_db(transaction=True)
def test_another_organization_gets_404_for_every_use(client, upstreams, gateway_url, other_org, api_key):
    import requests

    mine = client.responses.create(model="mock:ok", input="Say hello")
    outsider = {"Authorization": f"Bearer {mint_api_key(other_org, name='x')[1]}"}
    for method in ("get", "delete"):
        resp = requests.request(method, f"{gateway_url}/responses/{mine.id}", headers=outsider, timeout=10)
        assert resp.status_code == 404 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = requests.post(f"{gateway_url}/responses", headers=outsider, timeout=10,
                         json={"model": "mock:ok", "input": "Hi", "previous_response_id": mine.id})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "previous_response_not_found"
    assert resp.json()["error"]["param"] == "previous_response_id"
    owner = requests.delete(f"{gateway_url}/responses/{mine.id}", headers={"Authorization": f"Bearer {api_key}"},
                            timeout=10)
    assert owner.json() == {"id": mine.id, "object": "response", "deleted": True}


@pytest.mark.django_db
def test_retention_deletes_stored_responses_with_usage_records(org):
    now = timezone.now()
    for name, age in (("resp_old", 40), ("resp_new", 5)):
        StoredResponse.objects.create(response_id=name, organization=org, model="mock:ok", status="completed",
                                      created_at=now - timedelta(days=age))
    prune_usage(now, retention_days=0)
    assert StoredResponse.objects.count() == 2  # 0 keeps everything, as for usage records
    prune_usage(now, retention_days=30)
    assert list(StoredResponse.objects.values_list("response_id", flat=True)) == ["resp_new"]


@pytest.mark.django_db(transaction=True)
def test_storing_costs_one_insert_and_continuing_one_read(catalog, api_key):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    browser = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def stored_response_queries(**body) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            resp = browser.post("/v1/responses", {"model": "mock:ok", "input": "Hi", **body},
                                content_type="application/json")
            assert resp.status_code == 200, resp.content
            b"".join(resp.streaming_content) if resp.streaming else resp.content
            resp.close()
        return [q["sql"].split()[0] for q in queries.captured_queries if "gateway_storedresponse" in q["sql"]]

    stored_response_queries(store=False)  # warm: key and catalog cached
    assert stored_response_queries(store=False) == []
    assert stored_response_queries(store=False, stream=True) == []
    assert stored_response_queries() == ["INSERT"]
    first = StoredResponse.objects.get()
    assert stored_response_queries(previous_response_id=first.response_id, stream=True) == ["SELECT", "INSERT"]
