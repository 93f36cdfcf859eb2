"""Who is calling the management API: an organization's "mk-" key, or the operator.

The two DRF authentication classes are the only places /api/v1 reads the Authorization
header; views get `request.auth`, a Caller, and never parse headers themselves.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from console.tenancy.models import Organization
from gateway.api.errors import InvalidApiKey
from gateway.keys.api_keys import find_management_key, looks_like_management_secret, looks_like_secret

from .errors import unknown_url

MAX_AUTHORIZATION_BYTES = 1024


@dataclass(frozen=True)
class Caller:
    organization: Organization | None  # None: the operator
    actor: object  # the user the audit log names: the management key's creator, or None
    credential: str  # how the audit log and the rate limit name this caller: "mk-AbCdEfG", "operator"
    throttle_id: str


def bearer(request, example: str) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise InvalidApiKey(f"Missing credentials. Send them as 'Authorization: Bearer {example}'.")
    if len(header.encode("utf-8", "surrogateescape")) > MAX_AUTHORIZATION_BYTES:
        raise InvalidApiKey(f"Malformed Authorization header: longer than {MAX_AUTHORIZATION_BYTES} bytes.")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret or secret != secret.strip():
        raise InvalidApiKey(f"Malformed Authorization header. Send 'Authorization: Bearer {example}'.")
    return secret


class ManagementKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer mk-…`: request.auth is the Caller of the key's organization."""

    def authenticate(self, request):
        secret = bearer(request, "mk-...")
        if looks_like_secret(secret):
            raise InvalidApiKey("An inference key (sk-...) cannot call the management API; "
                                "use a management key (mk-...).")
        if not looks_like_management_secret(secret):
            raise InvalidApiKey("Malformed management key. Keys look like 'mk-' followed by 43 characters.")
        key = find_management_key(secret)
        if key is None:
            raise InvalidApiKey(f"Incorrect management key provided: {secret[:10]}… is not a key of this gateway.")
        if key.revoked_at is not None:
            raise InvalidApiKey(f"The management key {key.prefix}… has been revoked.")
        if key.expires_at is not None and key.expires_at <= timezone.now():
            raise InvalidApiKey(f"The management key {key.prefix}… expired on {key.expires_at:%Y-%m-%d %H:%M} UTC.")
        caller = Caller(organization=key.organization, actor=key.created_by, credential=key.prefix,
                        throttle_id=key.secret_hash[:32])
        return (None, caller)

    def authenticate_header(self, request):
        return 'Bearer realm="mixgateway"'


class OperatorAuthentication(BaseAuthentication):
    """`Authorization: Bearer $ADMIN_API_TOKEN`; without the setting the endpoints do not exist."""

    def authenticate(self, request):
        token = settings.ADMIN_API_TOKEN
        if not token:
            raise unknown_url(f"{request.method} {request.path}.")
        presented = bearer(request, "$ADMIN_API_TOKEN")
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode()):
            raise InvalidApiKey("Incorrect operator token.")
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        return (None, Caller(organization=None, actor=None, credential="operator", throttle_id=f"operator-{digest}"))

    def authenticate_header(self, request):
        return 'Bearer realm="mixgateway-operator"'
