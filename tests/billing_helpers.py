import time
from decimal import Decimal

from billing.models import Account, UsageRecord
from billing.reconcile import reconcile

OK_COST = Decimal("0.00000546")  # mock:ok: 8 prompt + 3 completion tokens at 0.27 / 1.10


def booked(request_id: str, timeout: float = 10) -> UsageRecord:
    """The request's usage record once it is booked. A stream settles after its last byte
    has left, so the record can trail the caller's view of the answer by a moment."""
    deadline = time.monotonic() + timeout
    while True:
        reconcile()
        record = UsageRecord.objects.filter(request_id=request_id).first()
        if record is not None or time.monotonic() > deadline:
            assert record is not None, f"request {request_id} was never booked"
            return record
        time.sleep(0.05)


def balance(org) -> Decimal:
    reconcile()
    return Account.objects.get(organization=org).balance
