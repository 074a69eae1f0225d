"""Secrets at rest: Fernet encryption with key rotation, and a column type that uses it.

`TOKEN_ENCRYPTION_KEY` holds one or more keys, newest first. New values are encrypted with the first;
any listed key decrypts. `flask keys rotate` re-encrypts every stored secret with the newest key, after
which older keys can be removed from the setting.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class SecretBox:
    """Encrypts and decrypts short secrets (tokens, passwords) with rotating Fernet keys."""

    def __init__(self, keys: tuple[str, ...] | list[str]):
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt; raises cryptography.fernet.InvalidToken when no configured key fits."""
        return self._fernet.decrypt(ciphertext.encode()).decode()

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def secret_box() -> SecretBox:
    """The current app's SecretBox (bound in create_app)."""
    return current_app.extensions["secret_box"]


class EncryptedText(TypeDecorator):
    """A text column stored encrypted; reads give plaintext. Needs an app context."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return secret_box().encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return secret_box().decrypt(value)
        except InvalidToken:
            # A key was removed before rotation: the secret is unreadable, which callers treat as absent
            # (the portal then needs re-authorisation) rather than crashing every query that loads the row.
            current_app.logger.error("stored secret cannot be decrypted with TOKEN_ENCRYPTION_KEY; rotate keys first")
            return None
