"""What each audit row says to a person: "Invited bob@… as member", not a dump of its
details. An action without a sentence here (a new one) still reads, as its label and
its details."""

from decimal import Decimal, InvalidOperation

from billing.money import usd


def _usd(value) -> str:
    try:
        return f"{usd(Decimal(str(value)))} USD"
    except (InvalidOperation, ValueError):
        return f"{value} USD"


def _key(details, target) -> str:
    name = details.get("name")
    return f"“{name}” ({target}…)" if name else f"{target}…"


def _balance(details) -> str:
    after = details.get("balance_after")
    note = details.get("note")
    text = f"; the balance is now {_usd(after)}" if after is not None else ""
    return text + (f" ({note})" if note else "")


def _limit(value) -> str:
    return _usd(value) if value not in (None, "", "0") else "none"


def _limit_or_off(value) -> str:
    return "off" if value in (None, "") else _usd(value)


def _webhook_changed(d) -> str:
    old, new = d.get("old_url") or "", d.get("new_url") or ""
    if not new:
        return f"Removed the webhook URL {old}".rstrip()
    made = " and made a new signing secret" if d.get("new_secret") else ""
    return (f"Changed the webhook URL from {old} to {new}" if old else f"Set the webhook URL to {new}") + made


PERIODS = {"none": "in all", "daily": "per UTC day", "weekly": "per UTC week", "monthly": "per UTC month"}


def _key_limit(field: str, value) -> str:
    """One limit of a key as a phrase: "spend limit 5 USD", "60 requests per minute"."""
    if field == "allowed_models":
        return "only for " + ", ".join(value) if value else "every model"
    if field == "expires_at":
        return f"expires {value[:10]}" if value else "no expiry"
    if field == "spend_limit":
        return f"spend limit {_usd(value)}" if value not in (None, "") else "no spend limit"
    if field == "budget_period":
        return f"budget {PERIODS.get(value, value)}"
    if field in ("rpm_limit", "tpm_limit"):
        unit = "requests" if field == "rpm_limit" else "tokens"
        return f"{value} {unit} per minute" if value else f"no {unit}-per-minute limit"
    return f"{field.replace('_', ' ')} {value}"


LIMIT_FIELDS = ("allowed_models", "spend_limit", "budget_period", "rpm_limit", "tpm_limit", "expires_at")


def _key_created(d, target):
    extra = [_key_limit(field, d[field]) for field in LIMIT_FIELDS
             if d.get(field) not in (None, "", [], "none")]
    return f"Created API key {_key(d, target)}" + (f": {'; '.join(extra)}" if extra else "")


def _key_updated(d, target):
    changes = [f"{_key_limit(field, d.get('old_' + field))} → {_key_limit(field, d[field])}"
               for field in LIMIT_FIELDS if field in d]
    return f"Changed the limits of API key {target}…: {'; '.join(changes)}"


SENTENCES = {
    "key.created": _key_created,
    "key.renamed": lambda d, t: f"Renamed API key {t}… from “{d.get('old_name') or 'unnamed'}” to "
                                f"“{d.get('new_name') or 'unnamed'}”",
    "key.revoked": lambda d, t: f"Revoked API key {_key(d, t)}",
    "key.updated": _key_updated,
    "member.invited": lambda d, t: f"Invited {t} as {d.get('role', 'member')}" + (
        ", replacing their earlier invitation" if d.get("replaced_open_invitation") else ""),
    "invitation.revoked": lambda d, t: f"Withdrew the invitation of {t} (as {d.get('role', 'member')})",
    "invitation.accepted": lambda d, t: f"{t} accepted the invitation and joined as {d.get('role', 'member')}",
    "invitation.declined": lambda d, t: f"{t} declined the invitation",
    "member.role_changed": lambda d, t: f"Changed the role of {t} from {d.get('old_role')} to {d.get('new_role')}",
    "member.removed": lambda d, t: (f"{t} left the organization" if d.get("left")
                                    else f"Removed {t} ({d.get('role', 'member')}) from the organization"),
    "balance.credited": lambda d, t: f"Credited {_usd(d.get('amount'))}{_balance(d)}",
    "balance.adjusted": lambda d, t: f"Adjusted the balance by {_usd(d.get('amount'))}{_balance(d)}",
    "credit_limit.changed": lambda d, t: f"Changed the credit limit from {_limit(d.get('old_limit'))} to "
                                         f"{_limit(d.get('new_limit'))}",
    "low_balance_threshold.changed": lambda d, t: f"Changed the low-balance alert threshold from "
                                                  f"{_limit_or_off(d.get('old_threshold'))} to "
                                                  f"{_limit_or_off(d.get('new_threshold'))}",
    "webhook.changed": lambda d, t: _webhook_changed(d),
    "code.minted": lambda d, t: f"Minted code {t}… worth {_usd(d.get('amount'))}",
    "code.redeemed": lambda d, t: f"Redeemed code {t}… for {_usd(d.get('amount'))}{_balance(d)}",
    "response.deleted": lambda d, t: f"Deleted stored response {t} ({d.get('model')})",
}


def describe(event, label: str) -> str:
    details = event.details or {}
    sentence = SENTENCES.get(event.action)
    if sentence is not None:
        try:
            return sentence(details, event.target)
        except (KeyError, TypeError, AttributeError):
            pass  # an older row without a detail the sentence needs: fall back below
    shown = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in details.items()
                      if value not in (None, "", False) and not key.endswith("_id"))
    return f"{label}{': ' + shown if shown else ''}" + (f" ({event.target})" if event.target else "")
