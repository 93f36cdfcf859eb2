"""Billing's half of the signals between layers: it hears tenancy below it and tells the
gateway above it, so that it imports neither upwards."""

from django.dispatch import Signal

from .ledger import open_account

# Sent with `records=` (the usage records just written, as billing.usage_rows rows: a
# UsageRecord's attributes, read alike) inside the booking transaction.
usage_booked = Signal()
# Sent with `cutoff=` (a datetime) when usage retention has deleted the records before it:
# what the layers above keep per request (stored responses) goes with them.
usage_pruned = Signal()


def open_account_of_new_organization(sender, organization, **kwargs):
    open_account(organization.pk)
