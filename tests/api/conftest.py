"""The management API against the live server, through `requests`: organization `org`
("Alpha Labs", alice owner, dave admin, bob member, 100 USD) and `other_org` ("Beta Corp",
charlie), each with a management key made by its owner; `operator_token` turns the
operator endpoints on."""

import secrets

import pytest
from django.contrib.auth import get_user_model

from console.tenancy.models import Membership
from gateway.keys.api_keys import create_management_key
from tests.api.support import Api


def person(email: str, org=None, role=None):
    user = get_user_model().objects.filter(email=email).first()
    if user is None:
        user = get_user_model().objects.create_user(username=email, email=email, password="correct horse 42")
    if org is not None:
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": role})
    return user


@pytest.fixture
def alice(org):
    return person("alice@alpha.example")


@pytest.fixture
def dave(org):
    return person("dave@alpha.example", org, Membership.Role.ADMIN)


@pytest.fixture
def bob(org):
    return person("bob@alpha.example", org, Membership.Role.MEMBER)


@pytest.fixture
def charlie(other_org):
    return person("charlie@beta.example")


@pytest.fixture
def management_key(org, alice) -> str:
    _, secret = create_management_key(org, name="automation", created_by=alice)
    return secret


@pytest.fixture
def api(live_server, management_key) -> Api:
    return Api(live_server.url, management_key)


@pytest.fixture
def other_api(live_server, other_org, charlie) -> Api:
    _, secret = create_management_key(other_org, name="theirs", created_by=charlie)
    return Api(live_server.url, secret)


@pytest.fixture
def operator_token(settings) -> str:
    settings.ADMIN_API_TOKEN = secrets.token_hex(24)
    return settings.ADMIN_API_TOKEN


@pytest.fixture
def operator(live_server, operator_token) -> Api:
    return Api(live_server.url, operator_token)
