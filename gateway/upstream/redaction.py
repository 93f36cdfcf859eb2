"""Keeping the gateway's upstream keys out of what callers and logs see.

An upstream's error message may quote the key it was sent ("Incorrect API key provided:
gsk_..."). Keys have no common shape (gsk_, sk-ant-, Azure's bare hex), so the values
configured for this gateway are redacted themselves: those of the environment variables
the catalog names and those stored encrypted in the database. Anything that merely looks
like a key is redacted too, for keys this process has never been told about.
"""

import logging
import os
import re
import threading
import time

from django.conf import settings
from django.db import DatabaseError

from .upstream_keys import decrypt

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
KEY_LIKE = re.compile(r"\b(?:(?:sk|key|pk|rk|gsk|xai)[-_][A-Za-z0-9*_\-.]{6,}|AIza[A-Za-z0-9_\-]{30,})")
# Shorter values ("EMPTY", "ollama") are placeholders a local server ignores; redacting
# them would mangle ordinary words in every message.
MIN_SECRET_LENGTH = 8

_known: tuple[float, tuple[str, ...]] = (0.0, ())
_lock = threading.Lock()


def _configured_values() -> tuple[str, ...]:
    from ..models import CatalogModel, Provider  # the catalog's models need the app registry

    names, stored = set(), []
    for env_name, encrypted in Provider.objects.values_list("api_key_env", "api_key_encrypted"):
        names.add(env_name)
        stored.append(encrypted)
    for deployments in CatalogModel.objects.exclude(deployments=[]).values_list("deployments", flat=True):
        names.update(d.get("api_key_env") for d in deployments or () if isinstance(d, dict))
    values = {os.environ.get(name) for name in names if name} | {decrypt(c) for c in stored if c}
    # Longest first, so a key that contains another is redacted whole.
    return tuple(sorted((v for v in values if v and len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def configured_secrets() -> tuple[str, ...]:
    """The upstream key values this gateway is configured with, read through a cache of
    GATEWAY_CACHE_SECONDS (keys change only when an operator changes the catalog)."""
    global _known
    valid_until, values = _known
    if valid_until > time.monotonic():
        return values
    try:
        values = _configured_values()
    except DatabaseError:
        log.warning("could not read the configured upstream keys; redacting the ones known before")
    with _lock:
        _known = (time.monotonic() + settings.GATEWAY_CACHE_SECONDS, values)
    return values


def forget_configured_secrets() -> None:
    global _known
    with _lock:
        _known = (0.0, ())


def redact(text: str) -> str:
    """`text` without any upstream key in it."""
    for secret in configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return KEY_LIKE.sub(REDACTED, text)
