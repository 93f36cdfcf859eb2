"""Actions that move money. Each appends ledger entries in one transaction, keeps the
account's cached balance in step, and tells the live store once the change is committed."""

import secrets
import uuid
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.tenancy import audit

from . import alerts, live
from .models import Account, LedgerEntry, RedeemCode
from .money import ZERO, InexactAmount, to_units


class BillingError(ValueError):
    pass


def parse_amount(text, *, allow_negative=False) -> Decimal:
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise BillingError(f"{text!r} is not a decimal amount of USD")
    if not amount.is_finite() or (amount <= 0 and not allow_negative) or amount == 0:
        raise BillingError("the amount must be a positive number of USD" if not allow_negative
                           else "the amount must not be zero")
    try:
        to_units(amount)  # refuses sub-picodollar amounts rather than round them
    except InexactAmount:
        raise BillingError("amounts are exact to 12 decimal places of USD; this one has more")
    if abs(amount) >= Decimal("9000000"):
        raise BillingError("an amount must be below 9,000,000 USD")
    return amount


def account_for(organization_id: int) -> Account:
    account, _ = Account.objects.get_or_create(organization_id=organization_id)
    return account


def publish(account: Account, booked_request_ids=()) -> None:
    """Push the committed balance to the live store (the request path reads it there)."""
    live.apply_ledger(account.organization_id, account.ledger_head, to_units(account.balance),
                      to_units(account.credit_limit), booked_request_ids)


def post_entry(organization_id: int, kind: str, amount: Decimal, *, reference: str | None = None,
               note: str = "", created_by=None) -> LedgerEntry:
    with transaction.atomic():
        account_for(organization_id)
        # Appends to one account are serialised so each entry's balance_after is right.
        account = Account.objects.select_for_update().get(organization_id=organization_id)
        account.balance += amount
        entry = LedgerEntry.objects.create(
            account=account, kind=kind, amount=amount, balance_after=account.balance,
            reference=reference or f"{kind}:{uuid.uuid4()}", note=note[:500], created_by=created_by,
        )
        account.ledger_head = entry.pk
        account.save(update_fields=["balance", "ledger_head", "updated_at"])
        alerts.balance_changed(account)  # a credit re-arms the low-balance alert, a debit may fire it
        transaction.on_commit(lambda: publish(account))
    return entry


def _audited_entry(action: str, organization_id: int, kind: str, amount: Decimal, *, note: str, created_by,
                   reference) -> LedgerEntry:
    with transaction.atomic():
        entry = post_entry(organization_id, kind, amount, note=note, created_by=created_by, reference=reference)
        audit.record(action, organization=organization_id, actor=created_by, target=entry.reference,
                     amount=entry.amount, balance_after=entry.balance_after, ledger_entry_id=entry.pk, note=entry.note)
    return entry


def credit(organization_id: int, amount: Decimal, *, note: str = "", created_by=None, reference=None) -> LedgerEntry:
    return _audited_entry("balance.credited", organization_id, LedgerEntry.Kind.CREDIT, amount, note=note,
                          created_by=created_by, reference=reference)


def adjust(organization_id: int, amount: Decimal, *, note: str, created_by=None, reference=None) -> LedgerEntry:
    if not note.strip():
        raise BillingError("an adjustment needs a note saying why")
    return _audited_entry("balance.adjusted", organization_id, LedgerEntry.Kind.ADJUSTMENT, amount, note=note,
                          created_by=created_by, reference=reference)


def refund(organization_id: int, amount: Decimal, *, note: str, reference: str) -> LedgerEntry:
    """Money paid back to whoever paid it in leaves the balance (`amount` is positive)."""
    return _audited_entry("balance.adjusted", organization_id, LedgerEntry.Kind.REFUND, -amount, note=note,
                          created_by=None, reference=reference)


def open_account(organization_id: int) -> Account:
    """A new organization's account, with the signup credit if the operator grants one."""
    account = account_for(organization_id)
    signup = Decimal(settings.SIGNUP_CREDIT_USD or "0")
    if signup > 0:
        credit(organization_id, signup, note="signup credit", reference=f"signup:{organization_id}")
    return account


def set_credit_limit(organization_id: int, limit: Decimal, *, actor=None) -> Account:
    if limit < 0:
        raise BillingError("a credit limit is zero or more")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_for(organization_id).pk)
        previous = account.credit_limit
        account.credit_limit = limit
        account.save(update_fields=["credit_limit", "updated_at"])
        if previous != limit:
            audit.record("credit_limit.changed", organization=organization_id, actor=actor,
                         old_limit=previous, new_limit=limit)
        transaction.on_commit(lambda: publish(account))
    return account


def mint_code(amount: Decimal, *, note="", created_by=None, expires_at=None) -> RedeemCode:
    amount = parse_amount(amount)
    code = "MG-" + "-".join(secrets.token_hex(3).upper() for _ in range(4))
    with transaction.atomic():
        minted = RedeemCode.objects.create(code=code, amount=amount, note=note, created_by=created_by,
                                           expires_at=expires_at)
        # A code is a bearer credit: the audit log keeps only its first characters.
        audit.record("code.minted", organization=None, actor=created_by, target=audit.code_prefix(code),
                     code_id=minted.pk, amount=amount, expires_at=expires_at.isoformat() if expires_at else None)
    return minted


def redeem(organization_id: int, code_text: str, *, user=None) -> LedgerEntry:
    """Spend a code once. The conditional update claims it; the ledger's unique reference
    would refuse a second booking even if two claims somehow raced past it."""
    code_text = code_text.strip().upper()
    with transaction.atomic():
        code = RedeemCode.objects.filter(code=code_text).first()
        if code is None:
            raise BillingError("no such code")
        now = timezone.now()
        if code.expires_at is not None and code.expires_at <= now:
            raise BillingError("this code has expired")
        claimed = RedeemCode.objects.filter(pk=code.pk, redeemed_at__isnull=True).update(
            redeemed_at=now, redeemed_by=user, redeemed_for_id=organization_id
        )
        if claimed != 1:
            raise BillingError("this code has already been redeemed")
        try:
            entry = post_entry(organization_id, LedgerEntry.Kind.REDEEM, code.amount, reference=f"redeem:{code.pk}",
                               note=f"code {code.code[:8]}…", created_by=user)
        except IntegrityError:
            raise BillingError("this code has already been redeemed")
        audit.record("code.redeemed", organization=organization_id, actor=user, target=audit.code_prefix(code.code),
                     code_id=code.pk, amount=entry.amount, balance_after=entry.balance_after, ledger_entry_id=entry.pk)
        return entry


def balance_of(organization_id: int) -> Decimal:
    account = Account.objects.filter(organization_id=organization_id).first()
    return account.balance if account else ZERO
