from django.conf import settings
from django.db import models
from django.utils import timezone


class Organization(models.Model):
    """A tenant: it owns API keys, a balance and usage. Every query is scoped to one."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Off unless an operator turns it on: request logs then carry prompt and completion text.
    log_content = models.BooleanField(default=False, help_text="log prompt and completion text of its requests")
    # Where the organization's events (e.g. balance.low) are POSTed, signed with the secret.
    webhook_url = models.URLField(max_length=500, blank=True)
    # Kept to sign each delivery (HMAC needs the secret itself); shown once, when the URL is set.
    webhook_secret = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_user_and_org")]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


class Invitation(models.Model):
    """An offer to join an organization, sent by email. Only a hash of the token is kept:
    the link in the email is the one place the token exists."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()  # stored lower-cased; compared case-insensitively
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open invitation per address and organization: re-inviting
            # revokes the old one first.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email_and_org",
            )
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self):
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def is_open(self) -> bool:
        """Not yet answered or withdrawn (it may still have expired)."""
        return self.accepted_at is None and self.declined_at is None and self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.declined_at:
            return "declined"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.is_expired else "pending"


class ImmutableAuditEvent(Exception):
    pass


class AuditEvent(models.Model):
    """Who changed what, written by the action that made the change and in its transaction.
    Rows are only ever added. `organization` is empty for staff-wide events (minting a code)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="empty for the system (signup credit, commands)",
    )
    action = models.CharField(max_length=40, help_text='what happened, e.g. "key.revoked"')
    target = models.CharField(max_length=200, blank=True, help_text="what it happened to: a key prefix, an email")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_time")]

    def __str__(self):
        return f"{self.action} {self.target}".strip()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableAuditEvent("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableAuditEvent("audit events cannot be deleted")
