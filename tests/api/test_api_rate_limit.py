"""The management API's own rate limit: per management key, 429 with retry-after."""

import pytest

from tests.api.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_management_key_has_its_own_window(api, other_api, settings):
    settings.MANAGEMENT_API_RATE_LIMIT = "3/minute"
    assert [api.get("organization").status_code for _ in range(3)] == [200] * 3
    resp = api.get("keys")
    error = assert_envelope(resp, 429, "rate_limit_exceeded")
    assert error["type"] == "requests" and 1 <= int(resp.headers["retry-after"]) <= 60
    assert other_api.get("organization").status_code == 200  # another key is not slowed down
