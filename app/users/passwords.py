"""Password hashes for Hub24's own users.

werkzeug.security is already installed with Flask and hashes with scrypt (memory-hard) by default; the
method is part of each stored hash, so a stronger method later re-hashes on the next sign-in without a
migration. argon2 would need a new compiled dependency for no gain here.

A user created by a sync gets the hash of a random secret that is thrown away at once, and
`password_set_at` stays empty: `check_password` refuses such a user whatever is typed, so the stored hash
can never be used to sign in until the user sets a password.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from werkzeug.security import check_password_hash, generate_password_hash

from ..models.directory import DirectoryUser

MIN_LENGTH = 10


def unusable_password_hash() -> str:
    """The hash of a random secret nobody keeps: a placeholder that matches no password anyone can type."""
    return generate_password_hash(secrets.token_urlsafe(32))


def set_password(user: DirectoryUser, password: str) -> None:
    """Give `user` a usable password (not committed). Raises ValueError for a password that is too short."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    user.password_hash = generate_password_hash(password)
    user.password_set_at = datetime.now(timezone.utc)


def check_password(user: DirectoryUser, password: str) -> bool:
    """True only for an active user who has set a password and typed it."""
    if not user.active or user.password_set_at is None or not password:
        return False
    return check_password_hash(user.password_hash, password)
