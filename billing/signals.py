"""Billing's half of the signals between layers: it hears tenancy below it and tells the
gateway above it, so that it imports neither upwards."""

from django.dispatch import Signal

from .ledger import open_account

# Sent with `records=` (the UsageRecords just written) inside the booking transaction.
usage_booked = Signal()


def open_account_of_new_organization(sender, organization, **kwargs):
    open_account(organization.pk)
