"""Encrypting and resolving secrets.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
``DATAHUB_MASTER_KEY`` (or, when unset, the Django SECRET_KEY). Only :func:`resolve_secret` returns a
plain value, and only the worker calls it; no page, API or log shows one.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from pipelines.errors import ConfigError


def _fernet() -> Fernet:
    material = getattr(settings, "DATAHUB_MASTER_KEY", "") or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(("datahub-secrets:" + material).encode()).digest())
    return Fernet(key)


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def set_secret_value(secret, value: str) -> None:
    """Store ``value``; a value of the form ``env:NAME`` becomes a reference to that variable."""
    if value.startswith("env:") and len(value) > 4:
        secret.env_name = value[4:]
        secret.ciphertext = ""
    else:
        secret.ciphertext = encrypt(value)
        secret.env_name = ""


def resolve_secret(code: str) -> str:
    from pipelines.models import Secret

    try:
        secret = Secret.objects.get(code=code)
    except Secret.DoesNotExist:
        raise ConfigError(f"unknown secret '{code}'") from None
    if secret.env_name:
        value = os.environ.get(secret.env_name)
        if value is None:
            raise ConfigError(f"secret '{code}' refers to environment variable {secret.env_name}, which is not set")
        return value
    if not secret.ciphertext:
        raise ConfigError(f"secret '{code}' has no value")
    try:
        return _fernet().decrypt(secret.ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ConfigError(f"secret '{code}' cannot be decrypted: was DATAHUB_MASTER_KEY changed?") from None
