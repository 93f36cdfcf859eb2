"""The Django admin for billing staff.

Money only moves through the action functions in billing.ledger: this module validates
what staff type, calls those functions and shows the result. It never writes balances,
ledger entries or codes itself. Ledger entries and usage records are read-only here.

Who may do what (superusers may do everything):
- see accounts, entries, usage, codes: the matching "Can view" permission;
- change a credit limit: "Can change account";
- credit or adjust a balance: "Can change account" and "Can add ledger entry";
- mint a code: "Can add redeem code"; delete an unredeemed code: "Can delete redeem code";
- replay quarantined usage events (which books their charges): "Can change quarantined
  usage event".
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from . import ledger
from .forms import AccountForm, BalanceMovementForm, MintCodeForm
from .models import Account, AlertDelivery, LedgerEntry, QuarantinedUsageEvent, RedeemCode, UsageRecord
from .money import usd
from .quarantine import event_of
from .reconcile import replay


def usd_column(field: str, description: str):
    """A list column showing a MoneyField as a plain decimal, sortable by the field."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        value = getattr(obj, field)
        return "-" if value is None else usd(value)

    column.__name__ = f"{field}_usd"
    return column


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete, whatever the user's permissions say."""

    show_full_result_count = False  # these tables grow without bound

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ["organization", "balance_usd", "credit_limit_usd", "ledger_head", "updated_at"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "organization__slug"]
    ordering = ["organization__name"]
    fields = ["organization", "balance_usd", "credit_limit", "ledger_head", "entries_link", "updated_at"]
    readonly_fields = ["organization", "balance_usd", "ledger_head", "entries_link", "updated_at"]

    balance_usd = usd_column("balance", "balance (USD)")
    credit_limit_usd = usd_column("credit_limit", "credit limit (USD)")

    @admin.display(description="ledger")
    def entries_link(self, obj):
        url = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={obj.pk}"
        return format_html('<a href="{}">View this account\'s ledger entries</a>', url)

    # Accounts are opened with their organization and never removed.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # Never obj.save(): that would write the balance the form was built from.
        if change and "credit_limit" in form.changed_data:
            account = ledger.set_credit_limit(obj.organization_id, form.cleaned_data["credit_limit"],
                                             actor=request.user)
            obj.credit_limit, obj.updated_at = account.credit_limit, account.updated_at

    def save_related(self, request, form, formsets, change):
        pass  # an account has no related objects edited here

    # Crediting and adjusting a balance.

    def can_move_money(self, request, account=None) -> bool:
        return self.has_change_permission(request, account) and request.user.has_perm("billing.add_ledgerentry")

    def get_urls(self):
        own = [
            path("<path:object_id>/balance/", self.admin_site.admin_view(self.balance_view),
                 name=f"{self.opts.app_label}_{self.opts.model_name}_balance"),
        ]
        return own + super().get_urls()  # before the catch-all "<path:object_id>/"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), "can_move_money": account is not None and self.can_move_money(request, account)}
        return super().change_view(request, object_id, form_url, extra_context)

    def balance_view(self, request, object_id):
        account = self.get_object(request, unquote(object_id))
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.can_move_money(request, account):
            raise PermissionDenied
        change_url = reverse("admin:billing_account_change", args=[account.pk], current_app=self.admin_site.name)

        if request.method == "POST":
            form = BalanceMovementForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    if data["kind"] == "credit":
                        entry = ledger.credit(account.organization_id, data["amount"], note=data["note"],
                                              created_by=request.user, reference=data["reference"])
                    else:
                        entry = ledger.adjust(account.organization_id, data["amount"], note=data["note"],
                                              created_by=request.user)
                except ledger.BillingError as exc:
                    form.add_error(None, str(exc))
                except IntegrityError:
                    if not (data["reference"] and LedgerEntry.objects.filter(reference=data["reference"]).exists()):
                        raise
                    messages.warning(request, "This credit had already been booked; it was not booked again.")
                    return HttpResponseRedirect(change_url)
                else:
                    what = "Credited" if entry.kind == LedgerEntry.Kind.CREDIT else "Adjusted by"
                    self.log_change(request, account, f"{what} {usd(entry.amount)} USD (ledger entry {entry.pk}).")
                    messages.success(
                        request,
                        f"{what} {usd(entry.amount)} USD for {account.organization}. "
                        f"New balance: {usd(entry.balance_after)} USD.",
                    )
                    return HttpResponseRedirect(change_url)
        else:
            form = BalanceMovementForm()

        context = {
            **self.admin_site.each_context(request),
            "title": f"Credit or adjust the balance of {account.organization}",
            "subtitle": None,
            "opts": self.opts,
            "original": account,
            "form": form,
            "balance": usd(account.balance),
            "credit_limit": usd(account.credit_limit),
            "change_url": change_url,
            "has_view_permission": self.has_view_permission(request, account),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/billing/account/balance_form.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "amount_usd", "balance_after_usd", "reference",
                    "created_by", "note"]
    list_select_related = ["account__organization", "created_by"]
    list_filter = ["kind", "created_at"]
    search_fields = ["reference", "note", "account__organization__name", "account__organization__slug"]
    date_hierarchy = "created_at"
    fields = ["account", "kind", "amount_usd", "balance_after_usd", "reference", "note", "created_by", "created_at"]
    readonly_fields = fields

    amount_usd = usd_column("amount", "amount (USD)")
    balance_after_usd = usd_column("balance_after", "balance after (USD)")

    @admin.display(description="organization", ordering="account__organization__name")
    def organization(self, obj):
        return obj.account.organization


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "created_at", "organization", "model", "status", "basis", "prompt_tokens",
                    "completion_tokens", "cost_usd", "latency_ms"]
    list_select_related = ["organization"]
    list_filter = ["status", "basis", "stream", "model"]
    search_fields = ["request_id", "model"]
    date_hierarchy = "created_at"
    fields = [
        "request_id", "organization", "api_key", "catalog_model", "model", "status", "http_status", "error_code",
        "stream", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens",
        "basis", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok", "cost_usd",
        "latency_ms", "ttft_ms", "created_at", "reconciled_at", "ledger_entry",
    ]
    readonly_fields = fields

    cost_usd = usd_column("cost", "cost (USD)")


@admin.register(QuarantinedUsageEvent)
class QuarantinedUsageEventAdmin(ReadOnlyAdmin):
    """Usage events the ledger refused: seen here, replayed once their cause is fixed."""

    list_display = ["request_id", "organization", "cost_usd", "attempts", "first_seen_at", "last_seen_at",
                    "replayed_at", "short_error"]
    list_select_related = ["organization"]
    list_filter = [("replayed_at", admin.EmptyFieldListFilter), "last_seen_at"]
    search_fields = ["request_id", "error", "organization__name", "organization__slug"]
    fields = ["request_id", "organization", "cost_usd", "attempts", "first_seen_at", "last_seen_at", "replayed_at",
              "error", "event_shown"]
    readonly_fields = fields
    actions = ["replay_events"]

    @admin.display(description="cost (USD)")
    def cost_usd(self, obj):
        event = event_of(obj)
        return event.get("cost", "-") if isinstance(event, dict) else "-"

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error if len(obj.error) <= 80 else obj.error[:79] + "…"

    @admin.display(description="event")
    def event_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(event_of(obj), indent=2, ensure_ascii=True))

    def has_replay_permission(self, request):
        return request.user.has_perm("billing.change_quarantinedusageevent")

    @admin.action(description="Replay: book the selected events again", permissions=["replay"])
    def replay_events(self, request, queryset):
        booked, refused = replay(queryset)
        for row in booked:
            self.log_change(request, row, "Replayed: booked into the ledger.")
        if booked:
            messages.success(request, f"Booked {len(booked)} quarantined event(s).")
        if refused:
            messages.error(request, f"The ledger still refused {len(refused)} event(s); see their error.")
        if not booked and not refused:
            messages.info(request, "Nothing to replay: the selected events were already booked.")


@admin.register(RedeemCode)
class RedeemCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "amount_usd", "created_at", "created_by", "expires_at", "redeemed_at", "redeemed_for"]
    list_select_related = ["created_by", "redeemed_for"]
    list_filter = [("redeemed_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["code", "note"]
    ordering = ["-created_at"]
    DETAIL_FIELDS = ["code", "amount_usd", "note", "created_by", "created_at", "expires_at", "redeemed_at",
                     "redeemed_by", "redeemed_for"]

    amount_usd = usd_column("amount", "amount (USD)")

    def get_fields(self, request, obj=None):
        return ["amount", "note", "expires_at"] if obj is None else self.DETAIL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.DETAIL_FIELDS

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MintCodeForm
        return super().get_form(request, obj, change=change, **kwargs)

    # A code is never edited: it is minted, then redeemed (or deleted while unredeemed).
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.redeemed_at is not None:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied  # unreachable: codes have no change permission
        data = form.cleaned_data
        code = ledger.mint_code(data["amount"], note=data["note"], created_by=request.user,
                                expires_at=data["expires_at"])
        # The admin goes on with `obj` (history log, redirect): make it the minted row.
        for field in code._meta.concrete_fields:
            setattr(obj, field.attname, getattr(code, field.attname))
        obj._state.adding, obj._state.db = False, code._state.db
        messages.success(request, f"Minted code {code.code} worth {usd(code.amount)} USD.")

    def save_related(self, request, form, formsets, change):
        pass

    # Deleting re-checks "unredeemed" in the statement itself, so a code redeemed after
    # the confirmation page was shown is never deleted.
    def delete_model(self, request, obj):
        deleted, _ = RedeemCode.objects.filter(pk=obj.pk, redeemed_at__isnull=True).delete()
        if not deleted:
            raise PermissionDenied("this code has been redeemed and can no longer be deleted")

    def delete_queryset(self, request, queryset):
        queryset.filter(redeemed_at__isnull=True).delete()


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """The alert delivery log of every organization (each sees its own on the Alerts page)."""

    list_display = ["created_at", "organization", "event_type", "channel", "status", "attempts", "last_status_code",
                    "last_error"]
    list_select_related = ["organization"]
    list_filter = ["status", "channel", "event_type"]
    search_fields = ["uuid", "organization__name", "organization__slug", "target"]
    fields = ["uuid", "organization", "event_type", "once_key", "channel", "target", "status", "attempts",
              "last_status_code", "last_error", "last_attempt_at", "delivered_at", "created_at", "payload"]
    readonly_fields = fields
