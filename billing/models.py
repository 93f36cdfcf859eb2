import uuid

from django.conf import settings
from django.db import models

from console.tenancy.models import Organization

from .money import ZERO, MoneyField, usd


class Account(models.Model):
    """An organization's prepaid account. `balance` is the sum of its ledger entries up to
    and including `ledger_head`, kept in the same transaction that appends each entry, so
    the cache can always be checked against the ledger."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="account")
    balance = MoneyField(default=ZERO)
    ledger_head = models.BigIntegerField(default=0, help_text="id of the last ledger entry in the balance")
    credit_limit = MoneyField(default=ZERO, help_text="how far below zero the balance may go")
    # Below this balance the owners are alerted (issue 14 sends it); empty: no alert.
    low_balance_threshold = MoneyField(null=True, blank=True, help_text="USD; empty: no low-balance alert")
    # When the balance last fell below the threshold and the alert went out; empty: armed.
    # Claimed by a conditional UPDATE (billing.alerts), so one crossing alerts once.
    low_balance_alerted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.organization} account"


class ImmutableRow(Exception):
    pass


class LedgerEntry(models.Model):
    """One movement of money. Rows are only ever added: corrections are new entries."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"
        USAGE = "usage", "Usage"
        ADJUSTMENT = "adjustment", "Adjustment"
        REDEEM = "redeem", "Redeemed code"
        REFUND = "refund", "Refund"

    # No index of its own: the (account, -id) index below starts with it.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = MoneyField(help_text="signed: credits positive, usage negative")
    balance_after = MoneyField()
    # What the entry is for, unique so that one request or one code can never be
    # booked twice: "usage:<request id>", "redeem:<code id>", "credit:<uuid>".
    reference = models.CharField(max_length=100, unique=True)
    note = models.CharField(max_length=500, blank=True)
    # Indexed only where set (ledger_created_by below): usage charges, nearly every entry,
    # have no author, and a user's deletion finds the entries to unlink through it all the same.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   db_index=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-id"]
        indexes = [
            # The ledger page and API read one account newest first; the partial index finds
            # its few credits and adjustments without walking millions of usage charges.
            models.Index(fields=["account", "-id"], name="ledger_account_id"),
            models.Index(fields=["account", "-id"], name="ledger_account_not_usage",
                         condition=~models.Q(kind="usage")),
            models.Index(fields=["created_by"], name="ledger_created_by", condition=models.Q(created_by__isnull=False)),
        ]

    def __str__(self):
        return f"{self.kind} {usd(self.amount)} USD ({self.reference})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableRow("ledger entries cannot be changed; add a correcting entry")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRow("ledger entries cannot be deleted")


class UsageRecord(models.Model):
    """What one gateway request consumed and what it cost, at the prices of that moment."""

    class Status(models.TextChoices):
        """How the request ended: every value the gateway books (docs/billing.md says how
        each is charged)."""

        COMPLETED = "completed", "Completed"
        UPSTREAM_ERROR = "upstream_error", "Upstream error"
        CLIENT_GONE = "client_gone", "Caller went away"
        ERROR = "error", "Gateway error"
        # Its web process died before settling; booked by the sweep (billing.abandoned).
        ABANDONED = "abandoned", "Abandoned: the gateway process died"

    class Basis(models.TextChoices):
        PROVIDER = "provider", "Reported by the provider"
        ESTIMATED = "estimated", "Estimated from the text"
        PARTIAL = "partial", "Partial: the answer was cut short"

    request_id = models.CharField(max_length=64, unique=True)
    # No index of its own: the (organization, -created_at, -id) index starts with it.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_records",
                                     db_index=False)
    api_key = models.ForeignKey("gateway.ApiKey", on_delete=models.SET_NULL, null=True, blank=True)
    catalog_model = models.ForeignKey("gateway.CatalogModel", on_delete=models.SET_NULL, null=True, blank=True)
    model = models.CharField(max_length=300, help_text="provider:modelId that served the request")
    status = models.CharField(max_length=20, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    stream = models.BooleanField(default=False)
    # 64-bit: a provider may report any count, and the record must keep the counts its
    # cost was computed from rather than a clamped value that no longer explains it.
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    # Of prompt_tokens, those written to the provider's prompt cache (Anthropic's cache
    # creation), billed at cache_write_per_mtok (the input price when that is empty).
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    basis = models.CharField(max_length=16, choices=Basis.choices)
    input_per_mtok = models.DecimalField(max_digits=20, decimal_places=10)
    output_per_mtok = models.DecimalField(max_digits=20, decimal_places=10)
    cached_input_per_mtok = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cache_write_per_mtok = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost = MoneyField(default=ZERO)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True, help_text="when the request arrived")
    reconciled_at = models.DateTimeField(auto_now_add=True)
    # No column pointing at the request's ledger entry: the entry names the request in its
    # unique reference, "usage:<request id>" (ledger_entry below). A stored id had to wait
    # for the entry, and entry ids are drawn under the account's lock, so every record was
    # written under it too (docs/performance.md, "Booking throughput").

    class Meta:
        ordering = ["-created_at"]
        # Exactly the console's and the API's order (newest first, id breaking ties), so a
        # page, however deep, is an index range read from its cursor.
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="usage_org_time_id")]

    def __str__(self):
        return f"{self.request_id} {self.model} {self.cost}"

    @property
    def ledger_entry(self) -> LedgerEntry | None:
        """The request's usage charge (None when it cost nothing), found by its unique
        reference: one indexed lookup. Only a usage charge of the record's own organization
        counts: an operator's credit may carry any reference."""
        return LedgerEntry.objects.filter(reference=usage_reference(self.request_id), kind=LedgerEntry.Kind.USAGE,
                                          account__organization_id=self.organization_id).first()


USAGE_REFERENCE_PREFIX = "usage:"


def usage_reference(request_id: str) -> str:
    """The reference of a request's usage charge: unique, so a request is charged once."""
    return USAGE_REFERENCE_PREFIX + request_id


class QuarantinedUsageEvent(models.Model):
    """A usage event the ledger refused even after billing.clamping fitted it: kept as it
    was queued, with its cost, until an operator replays it (billing.reconcile.replay)."""

    # The event's request id, or a digest of it when the id itself is what was refused.
    request_id = models.CharField(max_length=100, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    # Text, not JSON: PostgreSQL's jsonb refuses \u0000, and this row must take any event.
    event = models.TextField(help_text="the event as queued, as JSON with every non-ASCII character escaped")
    error = models.TextField(help_text="why the ledger refused it, at the last attempt")
    attempts = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    replayed_at = models.DateTimeField(null=True, blank=True, help_text="when a replay booked it")

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"quarantined {self.request_id}"


class UsageDailyRollup(models.Model):
    """Usage records older than USAGE_RETENTION_DAYS, summed per UTC day, model and key.
    Written only by billing.retention, in the transaction that deletes the records."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_rollups")
    day = models.DateField()
    model = models.CharField(max_length=300)
    api_key = models.ForeignKey("gateway.ApiKey", on_delete=models.SET_NULL, null=True, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = MoneyField(default=ZERO)

    class Meta:
        ordering = ["-day", "model"]
        constraints = [
            # Two constraints because NULL api_keys are distinct in a plain unique index.
            models.UniqueConstraint(fields=["organization", "day", "model", "api_key"],
                                    condition=models.Q(api_key__isnull=False), name="one_rollup_per_day_model_key"),
            models.UniqueConstraint(fields=["organization", "day", "model"],
                                    condition=models.Q(api_key__isnull=True), name="one_keyless_rollup_per_day_model"),
        ]

    def __str__(self):
        return f"{self.organization} {self.day} {self.model}: {self.requests} requests"


class UsageDay(models.Model):
    """Every booked usage record summed per UTC day (of its request), model, key and status,
    written by billing.reconcile in the transaction that books the records, so it always
    equals the sum of the records. The dashboard, the usage totals and the API's summary
    read it instead of millions of records. Retention never touches it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    model = models.CharField(max_length=300)
    # A plain id, 0 for none: the row outlives its key, and one unique index covers it.
    key_id = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20)
    requests = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = MoneyField(default=ZERO)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day", "model", "key_id", "status"],
                                               name="one_usage_day_per_group")]

    def __str__(self):
        return f"{self.organization_id} {self.day} {self.model}: {self.requests} requests"


class LedgerUsageDay(models.Model):
    """An account's usage charges summed per UTC day of the ledger entry, written with the
    entries (billing.reconcile): the ledger page shows usage as one row per day from it."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    entries = models.PositiveBigIntegerField(default=0)
    amount = MoneyField(default=ZERO, help_text="signed, like the entries: usage is negative")
    first_entry_id = models.BigIntegerField()
    last_entry_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "day"], name="one_ledger_usage_day")]
        ordering = ["-day"]

    def __str__(self):
        return f"{self.account_id} {self.day}: {self.entries} charges"


class RedeemCode(models.Model):
    """A prepaid code minted by operators; redeeming it credits one organization once."""

    code = models.CharField(max_length=40, unique=True)
    amount = MoneyField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    redeemed_for = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    def __str__(self):
        return f"{self.code[:8]}… ({usd(self.amount)} USD)"


class TopUp(models.Model):
    """One Stripe Checkout session an owner started to add money. Written only by
    billing.stripe_topups: created pending, paid (and credited) by the signed webhook."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="topups")
    session_id = models.CharField(max_length=255, unique=True)
    amount = MoneyField(help_text="what the session asks for until paid, then what Stripe says was paid")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    # Cumulative, like Stripe's charge.amount_refunded: each refund event debits only the rise.
    refunded = MoneyField(default=ZERO)
    receipt_url = models.URLField(max_length=2000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.session_id} {usd(self.amount)} USD ({self.status})"


class SettlementOutbox(models.Model):
    """A settlement the live store could not take (Redis unreachable as a request ended),
    kept here so it is never lost. Booking books it, gives back the request's holds once
    Redis answers again, then deletes the row (billing.outbox)."""

    request_id = models.CharField(max_length=64, unique=True)
    event = models.JSONField(help_text="the usage event, as the live store would have queued it")
    error = models.CharField(max_length=200, blank=True, help_text="why the live store could not take it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "settlement outbox"
        ordering = ["pk"]

    def __str__(self):
        return f"{self.request_id} (kept {self.created_at:%Y-%m-%d %H:%M:%S})"


class AlertDelivery(models.Model):
    """One alert to one channel, and how sending it went: the delivery log. Written only by
    billing.alerts (created) and billing.alert_delivery (each attempt)."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email to owners"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    # What the worker's task names: a stale task from another database can never match.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_deliveries")
    event_type = models.CharField(max_length=40, help_text='e.g. "balance.low", "key.spend", "test"')
    # Set for an event that may happen only once (a key's threshold in one period); unique
    # per channel, so a second claim of the same event fails in the database.
    once_key = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(help_text="the event as POSTed (money as decimal strings)")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=1000, blank=True, help_text="the URL or the addresses of the last attempt")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "alert deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="alert_delivery_org_time")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "channel", "once_key"], condition=~models.Q(once_key=""),
                                    name="one_delivery_per_event_and_channel"),
        ]

    def __str__(self):
        return f"{self.event_type} by {self.channel} ({self.status})"
