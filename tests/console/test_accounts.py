"""Accounts through allauth: sign-up gives a personal organization; passwords can be
changed and reset; login is by email."""

import re

import pytest
from django.test import Client

from console.tenancy.models import Membership

pytestmark = pytest.mark.django_db


def test_sign_up_sends_a_verification_link_and_creates_a_personal_organization(mailoutbox):
    browser = Client()
    resp = browser.post("/accounts/signup/", {"email": "erin@new.example", "password1": "a long passphrase 42",
                                              "password2": "a long passphrase 42"})
    assert resp.status_code == 302
    membership = Membership.objects.get(user__email="erin@new.example")
    assert membership.role == "owner" and membership.organization.name == "erin's organization"
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mailoutbox[0].body).group(1)
    browser.post(link)
    assert browser.get("/dashboard/").status_code == 200


def test_login_needs_a_verified_email(alice):
    from allauth.account.models import EmailAddress

    alice.set_password("correct horse 42")
    alice.save()
    browser = Client()
    resp = browser.post("/accounts/login/", {"login": "alice@alpha.example", "password": "correct horse 42"})
    assert resp.status_code == 302 and "confirm-email" in resp["Location"]
    EmailAddress.objects.filter(user=alice).update(verified=True, primary=True)
    resp = browser.post("/accounts/login/", {"login": "alice@alpha.example", "password": "correct horse 42"})
    assert resp["Location"] == "/dashboard/"


def test_a_password_can_be_reset_by_email(alice, mailoutbox):
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    Client().post("/accounts/password/reset/", {"email": "alice@alpha.example"})
    assert len(mailoutbox) == 1 and "/accounts/password/reset/key/" in mailoutbox[0].body


def test_a_password_can_be_changed(as_alice, alice):
    alice.set_password("correct horse 42")
    alice.save()
    as_alice.force_login(alice)
    resp = as_alice.post("/accounts/password/change/", {"oldpassword": "correct horse 42",
                                                        "password1": "a new long passphrase 7",
                                                        "password2": "a new long passphrase 7"})
    assert resp.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a new long passphrase 7")


def test_the_confirmation_mail_names_the_site_not_the_host(mailoutbox, settings):
    settings.SITE_NAME = "Acme Gateway"
    Client(HTTP_HOST="127.0.0.1").post("/accounts/signup/", {
        "email": "grace@new.example", "password1": "a long passphrase 42", "password2": "a long passphrase 42"})
    mail = mailoutbox[0]
    assert mail.subject.startswith("[Acme Gateway] ")
    assert mail.body.startswith("Hello from Acme Gateway!") and "Hello from 127.0.0.1" not in mail.body
