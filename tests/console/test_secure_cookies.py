"""Session and CSRF cookies are Secure whenever the request arrived over HTTPS (directly,
or as a trusted proxy reports it), and always with SECURE_SSL_REDIRECT."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from console.tenancy.models import Membership

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent
FORWARDED_HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


@pytest.fixture
def switch(as_alice, alice, other_org):
    """POST /orgs/switch/ (which writes the session, so the answer sets its cookie)."""
    Membership.objects.create(user=alice, organization=other_org, role="member")

    def post(**extra):
        return as_alice.post("/orgs/switch/", {"organization": other_org.pk}, **extra)

    return post


def test_over_https_the_session_cookie_is_secure(switch):
    assert switch(secure=True).cookies["sessionid"]["secure"] is True


def test_over_plain_http_it_is_not(switch):
    assert not switch().cookies["sessionid"]["secure"]


def test_behind_a_trusted_proxy_its_forwarded_proto_decides(switch, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert switch(**FORWARDED_HTTPS).cookies["sessionid"]["secure"] is True
    assert not switch(HTTP_X_FORWARDED_PROTO="http").cookies["sessionid"]["secure"]


def test_an_untrusted_forwarded_proto_is_ignored(switch, settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not switch(**FORWARDED_HTTPS).cookies["sessionid"]["secure"]


def test_the_csrf_cookie_follows_the_same_rule(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client().get("/accounts/login/", **FORWARDED_HTTPS).cookies["csrftoken"]["secure"] is True
    assert not Client().get("/accounts/login/").cookies["csrftoken"]["secure"]


def settings_of(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECURE_SSL_REDIRECT", "TRUST_X_FORWARDED_PROTO")}
    code = ("from django.conf import settings; "
            "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SECURE_PROXY_SSL_HEADER)")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_environment_sets_both_switches():
    assert settings_of(SECURE_SSL_REDIRECT="true") == "True True None"
    assert settings_of(TRUST_X_FORWARDED_PROTO="true") == "False False ('HTTP_X_FORWARDED_PROTO', 'https')"
