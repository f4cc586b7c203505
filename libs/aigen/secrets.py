"""Secrets at rest: provider keys are sealed with Fernet (AES-128-CBC + HMAC) under AIGEN_SECRET_KEY.

With no AIGEN_SECRET_KEY set, `aigen run` generates one under AIGEN_HOME (mode 0600) and hands
it to every service it starts; production deployments set it from their secret store.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from aigen.logs import register_secret

SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


class SecretError(ValueError):
    pass


def load_or_create(home: Path) -> str:
    path = home / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _fernet_key(secret: str) -> bytes:
    """Accept a Fernet key as is; derive one from any other passphrase."""
    raw = secret.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class Sealer:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise SecretError("AIGEN_SECRET_KEY is empty")
        self._fernet = Fernet(_fernet_key(secret))

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def unseal(self, token: bytes) -> str:
        try:
            value = self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretError("a sealed secret does not open with this AIGEN_SECRET_KEY") from None
        register_secret(value)
        return value


def mask(secret: str) -> str:
    """What may be shown of a secret: its last four characters."""
    return "••••" + secret[-4:] if len(secret) >= 8 else "••••"
