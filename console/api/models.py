from django.db import models

from console.tenancy.models import Organization


class IdempotentRequest(models.Model):
    """The first answer to a POST that carried an Idempotency-Key, kept for a day so that a
    retry gets it back instead of doing the work again. The row is written in the same
    transaction as the work, so it exists exactly when the work was done."""

    # None for the operator's endpoints (ADMIN_API_TOKEN), which belong to no organization.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, null=True, blank=True,
                                     related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField(default=0)
    # The answer's JSON, encrypted: it may hold a key's secret, which is otherwise never stored.
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            # Two constraints because NULL organizations are distinct in a plain unique index.
            models.UniqueConstraint(fields=["organization", "key"], condition=models.Q(organization__isnull=False),
                                    name="one_idempotency_key_per_organization"),
            models.UniqueConstraint(fields=["key"], condition=models.Q(organization__isnull=True),
                                    name="one_idempotency_key_for_the_operator"),
        ]

    def __str__(self):
        return f"{self.key} ({self.status_code})"
