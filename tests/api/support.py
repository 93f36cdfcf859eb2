"""A small client of /api/v1 and the error envelope's check, for the management API tests."""

import requests


class Api:
    """A client of /api/v1 for one credential: api.get("keys"), api.post("keys", json=...)."""

    def __init__(self, base_url: str, credential: str | None):
        self.base = f"{base_url}/api/v1/"
        self.session = requests.Session()
        if credential is not None:
            self.session.headers["Authorization"] = f"Bearer {credential}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url(path), timeout=20, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def assert_envelope(response: requests.Response, status: int, code: str, param: str | None = ...) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["request_id"] == response.headers["x-request-id"]
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"]
    assert body["error"]["code"] == code, body
    if param is not ...:
        assert body["error"]["param"] == param, body
    return body["error"]
