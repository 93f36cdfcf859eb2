from celery import shared_task

from .reconcile import reconcile
from .reservations import get_store


@shared_task(acks_late=True)
def reconcile_usage() -> int:
    return reconcile()


@shared_task
def release_expired_reservations() -> int:
    return get_store().release_expired()
