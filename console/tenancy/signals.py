"""What the tenant side tells the layers above it, so that it never imports them."""

from django.dispatch import Signal

# Sent with `organization=` inside the transaction that creates it, so whatever a receiver
# adds (billing opens the organization's account) commits or rolls back with it.
organization_created = Signal()
