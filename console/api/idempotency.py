"""Idempotency-Key on POST: a retry gets the first answer back and changes nothing.

Insert first: the key's row is inserted in the same transaction as the work it guards,
before the work. A second request with the same key inserts the same row; the unique
constraint makes PostgreSQL hold that insert until the first transaction ends (SQLite's
IMMEDIATE transactions wait for the whole first transaction). If the first committed, the
insert fails and the second request answers from the stored row; if the first rolled back
(it failed), the second does the work itself. So two simultaneous POSTs make one object.

Only successful answers are kept: a refused request changed nothing, and its retry is
judged afresh. Answers are stored encrypted under a key derived from SECRET_KEY and the
Idempotency-Key itself, because an answer may carry a new key's secret.
"""

import base64
import hashlib
import json
import re
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from gateway.api.errors import GatewayError

from .errors import invalid
from .models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the IETF draft's examples


def _fernet(organization_id, key: str) -> Fernet:
    material = f"mixgateway-idempotency:{settings.SECRET_KEY}:{organization_id}:{key}".encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def _replay(row: IdempotentRequest, organization_id, key: str, fingerprint: str) -> Response:
    if row.fingerprint != fingerprint:
        raise GatewayError(f"The Idempotency-Key {key!r} was already used for a different request; "
                           "use a new key for a new request.", code="idempotency_key_reused", status=422,
                           param=HEADER)
    try:
        body = json.loads(_fernet(organization_id, key).decrypt(row.answer.encode()))
    except InvalidToken:  # SECRET_KEY changed since: the first answer cannot be read back
        raise GatewayError("The first answer to this Idempotency-Key can no longer be read; "
                           "check whether the first request took effect before retrying with a new key.",
                           code="idempotency_key_unreadable", status=409, param=HEADER)
    return Response(body, status=row.status_code, headers={REPLAYED_HEADER: "true"})


def run_once(request, organization, work) -> Response:
    """Answer a POST with `work()` (a Response), at most once per Idempotency-Key and
    organization (None: the operator) within IDEMPOTENCY_KEY_HOURS."""
    key = request.headers.get(HEADER)
    if key is None:
        with transaction.atomic():
            return work()
    if not _KEY_SHAPE.fullmatch(key):
        raise invalid(f"{HEADER} must be 1 to 255 visible ASCII characters.", HEADER)
    organization_id = organization.pk if organization is not None else None
    fingerprint = _fingerprint(request)
    now = timezone.now()
    mine = IdempotentRequest.objects.filter(organization_id=organization_id, key=key)
    with transaction.atomic():
        # An expired row no longer counts; removing it lets this request claim the key anew.
        mine.filter(created_at__lt=now - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)).delete()
        try:
            with transaction.atomic():
                row = IdempotentRequest.objects.create(organization_id=organization_id, key=key,
                                                       fingerprint=fingerprint, created_at=now)
        except IntegrityError:
            return _replay(mine.get(), organization_id, key, fingerprint)
        response = work()
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)  # nothing was done, so nothing is remembered
            return response
        row.status_code = response.status_code
        answer = json.dumps(response.data, cls=JSONEncoder).encode()
        row.answer = _fernet(organization_id, key).encrypt(answer).decode()
        row.save(update_fields=["status_code", "answer"])
    return response


def prune(now=None) -> int:
    """Forget keys older than IDEMPOTENCY_KEY_HOURS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
