"""Encrypting and resolving secrets.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256). ``DATAHUB_MASTER_KEYS`` (the environment's
``DATAHUB_MASTER_KEY``, comma-separated, newest first) are the master keys: the first encrypts, every
one decrypts (cryptography's MultiFernet), so a new key is added in front, ``manage.py rotate_secrets``
re-encrypts every stored value under it, and the old key is then removed. Only the development profile,
with no master key set, derives one from SECRET_KEY; the production profile refuses to start without
its own. Only :func:`resolve_secret` returns a plain value; no page, API or log shows one.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from pipelines.errors import ConfigError


def _derive(material: str) -> Fernet:
    key = base64.urlsafe_b64encode(hashlib.sha256(("datahub-secrets:" + material).encode()).digest())
    return Fernet(key)


def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "DATAHUB_MASTER_KEYS", None) or []) or [settings.SECRET_KEY]
    return MultiFernet([_derive(material) for material in keys])


def rotate(ciphertext: str) -> str:
    """The same value encrypted under the newest master key (InvalidToken when no key decrypts it)."""
    return _fernet().rotate(ciphertext.encode("ascii")).decode("ascii")


def undecryptable() -> list[str]:
    """Codes of stored secrets that no master key decrypts (a key removed too early, or changed)."""
    from pipelines.models import Secret

    fernet = _fernet()
    bad = []
    for code, ciphertext in Secret.objects.exclude(ciphertext="").values_list("code", "ciphertext"):
        try:
            fernet.decrypt(ciphertext.encode("ascii"))
        except InvalidToken:
            bad.append(code)
    return bad


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
        raise ConfigError(f"secret '{code}' cannot be decrypted by any master key: was the key it was "
                          "stored under removed from DATAHUB_MASTER_KEY?") from None
