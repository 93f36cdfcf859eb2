"""People for console tests, after healthchecks' style: in organization `org` ("Alpha Labs")
alice is the owner, dave an admin and bob a member; charlie owns `other_org` ("Beta Corp")
and is an outsider to Alpha Labs."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console.pages.common import SESSION_KEY
from console.tenancy.models import Membership


def person(email: str):
    user = get_user_model().objects.filter(email=email).first()
    if user is None:
        user = get_user_model().objects.create_user(username=email, email=email, password="correct horse 42")
    return user


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(org):
    return person("alice@alpha.example")


@pytest.fixture
def bob(org):
    user = person("bob@alpha.example")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def dave(org):
    user = person("dave@alpha.example")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def charlie(other_org):
    return person("charlie@beta.example")


def logged_in(user, org=None) -> Client:
    """A browser session for `user`, working in `org` when given."""
    browser = Client()
    browser.force_login(user)
    if org is not None:
        session = browser.session
        session[SESSION_KEY] = org.pk
        session.save()
    return browser


@pytest.fixture
def as_alice(alice, org):
    return logged_in(alice, org)


@pytest.fixture
def as_bob(bob, org):
    return logged_in(bob, org)


@pytest.fixture
def as_dave(dave, org):
    return logged_in(dave, org)


@pytest.fixture
def as_charlie(charlie, other_org):
    return logged_in(charlie, other_org)
