"""JSON in and out of the gateway: exact costs, and no value that parsed before refused now."""

from decimal import Decimal

import pytest

from gateway.parsing.encoding import dumps, encode, loads


def test_a_cost_is_written_with_its_exact_digits():
    payload = {"model": "m", "usage": {"prompt_tokens": 8, "completion_tokens": 1}}
    assert encode(payload, Decimal("0.00000326")) == (
        b'{"model":"m","usage":{"prompt_tokens":8,"completion_tokens":1,"cost":0.00000326}}')
    assert payload["usage"]["cost"] == "0.00000326"


def test_a_tiny_cost_has_no_exponent():
    assert encode({"usage": {}}, Decimal("1E-12")) == b'{"usage":{"cost":0.000000000001}}'


def test_text_stays_utf8_and_only_json_escapes_it():
    assert dumps({"content": 'modèle "q" \\ ✓\n'}) == '{"content":"modèle \\"q\\" \\\\ ✓\\n"}'.encode()


@pytest.mark.parametrize("value", [{"seed": 2**70}, {1: "a non-string key"}, {"text": "\ud800"}])
def test_values_orjson_refuses_are_still_written(value):
    assert loads(dumps(value)) == {str(k): v for k, v in value.items()}


@pytest.mark.parametrize("data", [b'{"x": NaN}', b'{"x": 1e400}', b'{"x": "\\ud800"}'])
def test_json_the_standard_library_accepts_is_still_read(data):
    assert "x" in loads(data)


def test_what_is_not_json_is_a_value_error():
    with pytest.raises(ValueError):
        loads(b"{not json")
    with pytest.raises(ValueError):
        loads(b"\xff\xfe{")
