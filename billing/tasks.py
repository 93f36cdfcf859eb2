from celery import shared_task

from . import live
from .reconcile import reconcile
from .retention import prune_usage as prune_old_usage


@shared_task(acks_late=True)
def reconcile_usage() -> int:
    return reconcile()


@shared_task
def release_expired_reservations() -> int:
    return live.release_expired()


@shared_task
def book_abandoned_requests() -> int:
    """Book requests whose web process died before settling (billing.abandoned)."""
    return live.book_abandoned()


@shared_task(acks_late=True)
def prune_usage() -> int:
    """Roll up usage records older than USAGE_RETENTION_DAYS (does nothing when it is 0)."""
    return prune_old_usage().records
