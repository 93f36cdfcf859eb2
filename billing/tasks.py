from celery import shared_task

from . import live
from .alert_delivery import attempt, resend_overdue
from .reconcile import reconcile
from .retention import prune_usage as prune_old_usage


@shared_task(acks_late=True)
def reconcile_usage() -> int:
    return reconcile()


@shared_task
def release_expired_reservations() -> int:
    return live.release_expired()


@shared_task(acks_late=True)
def prune_usage() -> int:
    """Roll up usage records older than USAGE_RETENTION_DAYS (does nothing when it is 0)."""
    return prune_old_usage().records


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_alert(self, delivery_uuid: str) -> None:
    """One attempt at an alert delivery; a failed one is tried again after its backoff
    (billing.alert_delivery counts the attempts and says when to stop)."""
    wait = attempt(delivery_uuid)
    if wait is not None:
        raise self.retry(countdown=wait)


@shared_task
def resend_overdue_alerts() -> int:
    return resend_overdue()
