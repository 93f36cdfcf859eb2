"""Upstream API keys kept in the database, encrypted at rest.

A provider's key normally lives in the environment variable its catalog entry names. An
operator may instead paste it into the admin; then only its Fernet ciphertext is stored,
under UPSTREAM_KEYS_ENCRYPTION_KEY (or a key derived from SECRET_KEY when that is unset),
and it is never shown back in full.
"""

import base64
import hashlib
import threading

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_plain: dict[str, str] = {}  # ciphertext -> key, so each process decrypts a key once
_lock = threading.Lock()


def _fernet() -> Fernet:
    secret = settings.UPSTREAM_KEYS_ENCRYPTION_KEY or settings.SECRET_KEY
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"mixgateway-upstream-keys:" + secret.encode()).digest()))


def encrypt(api_key: str) -> str:
    return _fernet().encrypt(api_key.encode()).decode()


def decrypt(ciphertext: str) -> str | None:
    if ciphertext not in _plain:
        try:
            value = _fernet().decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return None  # encrypted under another key: treated as not configured
        with _lock:
            _plain[ciphertext] = value
    return _plain[ciphertext]


def masked(ciphertext: str) -> str:
    value = decrypt(ciphertext) if ciphertext else None
    return f"••••{value[-4:]}" if value else ""
