from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from .errors import InvalidApiKey
from ..keys.api_keys import KeyIdentity, find_key, looks_like_secret

MAX_AUTHORIZATION_BYTES = 1024  # a key is 46 characters; anything near this is not a key


def key_from_authorization(header: str) -> KeyIdentity:
    """The one place a bearer key becomes a caller, or InvalidApiKey saying why not."""
    if (len(header) > MAX_AUTHORIZATION_BYTES // 4
            and len(header.encode("utf-8", "surrogateescape")) > MAX_AUTHORIZATION_BYTES):
        raise InvalidApiKey(f"Malformed Authorization header: it is longer than {MAX_AUTHORIZATION_BYTES} "
                            "bytes. Send 'Authorization: Bearer sk-...'.")
    if not header:
        raise InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer sk-...'.")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise InvalidApiKey("Malformed Authorization header. Send 'Authorization: Bearer sk-...'.")
    return key_from_secret(secret)


def key_from_secret(secret: str) -> KeyIdentity:
    """The caller a bare secret names (from Authorization: Bearer, or Anthropic's x-api-key)."""
    if len(secret) > MAX_AUTHORIZATION_BYTES:
        raise InvalidApiKey(f"Malformed API key: it is longer than {MAX_AUTHORIZATION_BYTES} bytes.")
    if secret != secret.strip():
        raise InvalidApiKey("The API key has leading or trailing whitespace; copy it again exactly.")
    if not looks_like_secret(secret):
        raise InvalidApiKey("Malformed API key. Keys look like 'sk-' followed by 43 characters.")
    key = find_key(secret)
    if key is None:
        raise InvalidApiKey(f"Incorrect API key provided: {secret[:10]}… is not a key of this gateway.")
    if key.revoked:
        raise InvalidApiKey(f"The API key {key.prefix}… has been revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise InvalidApiKey(f"The API key {key.prefix}… expired on {key.expires_at:%Y-%m-%d %H:%M} UTC.")
    return key


class ApiKeyAuthentication(BaseAuthentication):
    """DRF's face of key_from_authorization: request.auth is a KeyIdentity. It reads
    headers only; nothing has read the body yet."""

    def authenticate(self, request):
        return (None, key_from_authorization(request.META.get("HTTP_AUTHORIZATION", "")))

    def authenticate_header(self, request):
        return 'Bearer realm="mixgateway"'


class AnthropicKeyAuthentication(ApiKeyAuthentication):
    """Anthropic's clients send the key as `x-api-key` (Claude Code with ANTHROPIC_API_KEY)
    or as a bearer token (ANTHROPIC_AUTH_TOKEN); x-api-key wins when both are sent."""

    def authenticate(self, request):
        secret = request.META.get("HTTP_X_API_KEY")
        if secret is None:
            return super().authenticate(request)
        if not secret:
            raise InvalidApiKey("Empty x-api-key header. Send 'x-api-key: sk-...'.")
        return (None, key_from_secret(secret))
