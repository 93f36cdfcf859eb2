"""Sending one AlertDelivery: a signed POST to the organization's webhook URL, or an email
to its owners. Every attempt is recorded on the delivery; a failed one (no answer, an
answer other than 2xx, a mail server's refusal) is tried again after a growing wait, up
to ALERT_MAX_ATTEMPTS in all.

The worker's task (billing.tasks.deliver_alert) makes one attempt and schedules the next;
the embedded default, which has no worker, runs the same attempts in a background thread.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

import certifi
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import close_old_connections, connection
from django.utils import timezone

from console.tenancy.models import Membership

from .models import AlertDelivery

log = logging.getLogger("mixgateway.alerts")
SIGNATURE_HEADER = "X-MixGateway-Signature"
Status = AlertDelivery.Status
# Under the Redis broker's visibility timeout (an hour), which would deliver a task waiting
# longer twice.
LONGEST_WAIT_SECONDS = 1800
# A task may run this much before its attempt is due (clocks of two machines).
EARLY_TOLERANCE = timedelta(seconds=1)
# A delivery this much past its due time has lost its task (the broker was down when it was
# raised, a worker lost a retry): the sweep hands it to the worker again.
OVERDUE = timedelta(minutes=5)


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=UNIX,v1=HEX`, HEX being HMAC-SHA256 of "{t}.{body}" keyed with the whole secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def wait_before(attempt: int) -> float:
    """Seconds between attempt `attempt` (1-based) and the next: doubling from the base."""
    return min(settings.ALERT_RETRY_BASE_SECONDS * 2 ** (attempt - 1), LONGEST_WAIT_SECONDS)


def _due_at(delivery: AlertDelivery):
    if not delivery.attempts:
        return delivery.created_at
    return delivery.last_attempt_at + timedelta(seconds=wait_before(delivery.attempts))


class Undeliverable(Exception):
    """Trying again cannot help (the URL was removed): the delivery fails at once."""


# No redirect handler (a redirected POST would lose its body or go where the owner did not
# say), no proxy handler (the environment's proxy is not the tenant's), and no error
# processor: every status comes back as an answer to record.
_opener = urllib.request.OpenerDirector()
for _handler in (urllib.request.HTTPHandler(),
                 urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=certifi.where()))):
    _opener.add_handler(_handler)


def _refuse_private_destination(url: str) -> None:
    """Best effort against a tenant pointing the worker at the inside of its network: every
    address the host resolves to must be public (unless ALERT_WEBHOOK_ALLOW_PRIVATE)."""
    if settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        return
    parts = urlsplit(url)
    infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                               proto=socket.IPPROTO_TCP)
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise Undeliverable(f"the webhook URL's host resolves to a non-public address ({address})")


def _post(delivery: AlertDelivery) -> tuple[int, str]:
    org = delivery.organization
    if not org.webhook_url:
        raise Undeliverable("the webhook URL was removed")
    delivery.target = org.webhook_url
    _refuse_private_destination(org.webhook_url)
    body = body_of(delivery.payload)
    request = urllib.request.Request(org.webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "MixGateway-Webhooks/1",
        SIGNATURE_HEADER: signature(org.webhook_secret, body, int(time.time())),
        # The same for every attempt, so a receiver can drop a delivery it already has.
        "X-MixGateway-Delivery": str(delivery.uuid),
    })
    with _opener.open(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS) as answer:
        return answer.status, answer.read(200).decode("utf-8", "replace")


def _subject_and_text(payload: dict, org: str) -> tuple[str, str]:
    if payload["type"] == "balance.low":
        return (f"The balance of {org} is below {payload['threshold_usd']} USD",
                f"The prepaid balance of {org} is {payload['balance_usd']} USD, below the alert threshold of "
                f"{payload['threshold_usd']} USD. Requests are refused once it cannot cover them: add credit "
                "on the Billing page.\n\nYou get this once each time the balance falls below the threshold.")
    if payload["type"] == "key.spend":
        return (f"API key “{payload['key_name']}” of {org} reached {payload['percent']}% of its spend limit",
                f"The API key “{payload['key_name']}” (id {payload['key_id']}) has spent {payload['spent_usd']} USD "
                f"of its {payload['limit_usd']} USD limit ({payload['budget_period']}). At 100% its requests are "
                "refused until the limit is raised or the period resets.")
    return f"A {payload['type']} event for {org}", json.dumps(payload, indent=2)


def _email(delivery: AlertDelivery) -> tuple[int | None, str]:
    owners = sorted(Membership.objects.filter(organization_id=delivery.organization_id, role=Membership.Role.OWNER)
                    .exclude(user__email="").values_list("user__email", flat=True))
    if not owners:
        raise Undeliverable("the organization has no owner with an email address")
    delivery.target = ", ".join(owners)[:1000]
    subject, text = _subject_and_text(delivery.payload, delivery.organization.name)
    # One message to every owner: a retry cannot mail some of them twice.
    EmailMessage(f"[{settings.SITE_NAME}] {subject}", text, None, owners).send()
    return None, ""


def attempt(delivery_uuid) -> float | None:
    """Make the next attempt at a delivery. Returns the seconds to wait before another,
    or None when there is nothing more to do (delivered, given up, or not ours)."""
    delivery = AlertDelivery.objects.select_related("organization").filter(uuid=delivery_uuid).first()
    if delivery is None or delivery.status != Status.PENDING:
        return None
    if timezone.now() + EARLY_TOLERANCE < _due_at(delivery):
        return None  # a copy of the task, early (a redelivery, the sweep): the scheduled one attempts
    number = delivery.attempts + 1
    # Claimed by a conditional update: a task delivered twice makes one attempt, not two.
    if AlertDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts).update(
            attempts=number, last_attempt_at=timezone.now()) != 1:
        return None
    code, error, final = None, "", False
    try:
        code, answer = (_post if delivery.channel == AlertDelivery.Channel.WEBHOOK else _email)(delivery)
        if code is not None and not 200 <= code < 300:
            error = f"answered {code}" + (f": {answer.strip()}" if answer.strip() else "")
    except Undeliverable as e:
        error, final = str(e), True
    except Exception as e:  # noqa: BLE001 - whatever the receiver or mail server did, it is recorded
        error = f"{type(e).__name__}: {e}"
    done = not error
    status = Status.DELIVERED if done else (
        Status.FAILED if final or number >= settings.ALERT_MAX_ATTEMPTS else Status.PENDING)
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=status, target=delivery.target, last_status_code=code, last_error=error[:500],
        delivered_at=timezone.now() if done else None)
    if error:
        log.warning("alert delivery %s (%s, %s) attempt %s failed: %s", delivery.uuid, delivery.event_type,
                    delivery.channel, number, error[:200])
    return wait_before(number) if status == Status.PENDING else None


def resend_overdue() -> int:
    """Hand the worker again every pending delivery long past its due time; returns how many."""
    now = timezone.now()
    overdue = [d.uuid for d in AlertDelivery.objects.filter(status=Status.PENDING, created_at__lt=now - OVERDUE)
               .only("uuid", "attempts", "created_at", "last_attempt_at") if _due_at(d) + OVERDUE < now]
    for delivery_uuid in overdue:
        dispatch(delivery_uuid)
    return len(overdue)


def dispatch(delivery_uuid) -> None:
    """Hand a committed delivery to the worker, or to a thread in the embedded default."""
    from .tasks import deliver_alert  # the tasks module imports this one

    if deliver_alert.app.conf.task_always_eager:
        threading.Thread(target=_attempt_until_done, args=(delivery_uuid,), daemon=True,
                         name=f"alert-{delivery_uuid}").start()
    else:
        deliver_alert.delay(str(delivery_uuid))


def _attempt_until_done(delivery_uuid) -> None:
    try:
        while (wait := attempt(delivery_uuid)) is not None:
            time.sleep(wait)
    except Exception:
        log.exception("alert delivery %s stopped", delivery_uuid)
    finally:
        close_old_connections()
        connection.close()
