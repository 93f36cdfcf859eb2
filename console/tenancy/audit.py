"""The audit log: one row per change, naming who made it.

Actions call `record` inside their own transaction, so a change that rolls back leaves no
row behind. Details must never hold secrets: no key secrets, no invitation tokens, and no
more of a redeem code than `code_prefix` gives.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from django.db import transaction

from .models import AuditEvent

# Every action that writes an audit row, for the console filter and the admin.
ACTIONS = {
    "key.created": "API key created",
    "key.renamed": "API key renamed",
    "key.revoked": "API key revoked",
    "key.updated": "API key limits changed",
    "webhook.changed": "Webhook URL changed",
    "member.invited": "Member invited",
    "invitation.revoked": "Invitation revoked",
    "invitation.accepted": "Invitation accepted",
    "invitation.declined": "Invitation declined",
    "member.role_changed": "Role changed",
    "member.removed": "Member removed",
    "balance.credited": "Balance credited",
    "balance.adjusted": "Balance adjusted",
    "credit_limit.changed": "Credit limit changed",
    "low_balance_threshold.changed": "Low-balance threshold changed",
    "code.minted": "Code minted",
    "code.redeemed": "Code redeemed",
    "response.deleted": "Stored response deleted",
}
CODE_PREFIX_LENGTH = 8


def code_prefix(code: str) -> str:
    return code[:CODE_PREFIX_LENGTH]


def _plain(value):
    # Money is stored as a plain decimal string so the JSON keeps every digit.
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    return value


# The credential a change came through when it is not the console session: the management
# API names its "mk-" key here for the length of one request (as django-auditlog's
# set_actor does), so every action's row says so without each action taking a parameter.
_via: ContextVar[str | None] = ContextVar("audit_via", default=None)


@contextmanager
def acting_through(credential: str):
    token = _via.set(credential)
    try:
        yield
    finally:
        _via.reset(token)


def record(action: str, *, organization, actor, target: str = "", **details) -> AuditEvent:
    """Append one audit row. Call it inside the transaction of the change it describes.
    `organization` is an Organization, its id, or None for staff-wide events; `actor` a
    user or None for the system."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit rows are written inside the transaction of the change they describe")
    if _via.get() is not None:
        details["via"] = _via.get()
    org_id = getattr(organization, "pk", organization)
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        organization_id=org_id,
        actor_id=actor_id,
        action=action,
        target=str(target)[:200],
        details={key: _plain(value) for key, value in details.items()},
    )
