from celery import shared_task

from .idempotency import prune


@shared_task
def prune_idempotency_keys() -> int:
    return prune()
