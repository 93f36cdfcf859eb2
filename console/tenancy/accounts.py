"""How allauth fits our tenancy: every new user gets a personal organization."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.signals import user_signed_up
from django.conf import settings
from django.dispatch import receiver

from .actions import create_organization


class AccountAdapter(DefaultAccountAdapter):
    def populate_username(self, request, user):
        # Users log in by email; Django's username column just mirrors it.
        user.username = (user.email or "").lower()[:150]

    def send_mail(self, template_prefix, email, context):
        # Without django.contrib.sites allauth's site name is the request's host
        # ("Hello from 127.0.0.1:8100!"); the mails name the product instead.
        super().send_mail(template_prefix, email, {"site_name": settings.SITE_NAME, **context})

    def format_email_subject(self, subject):
        return f"[{settings.SITE_NAME}] {subject}"


@receiver(user_signed_up, dispatch_uid="console.personal_organization")
def give_new_user_a_personal_organization(request, user, **kwargs):
    name = f"{user.email.split('@')[0]}'s organization"
    org = create_organization(name, user.email)
    if request is not None and hasattr(request, "session"):
        request.session["organization_id"] = org.pk
