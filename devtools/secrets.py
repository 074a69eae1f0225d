"""Development secrets for `make run` when SECRET_KEY / TOKEN_ENCRYPTION_KEY are not set.

They are generated once and kept outside the repository and outside var/ (in the user's config
directory, mode 0600), so tokens encrypted in one run stay readable in the next, whichever database
is used. Production sets both variables explicitly.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hub24"


def dev_secrets() -> dict[str, str]:
    """Return SECRET_KEY and TOKEN_ENCRYPTION_KEY, creating the file on first use."""
    path = config_dir() / "dev-secrets.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    if not values.get("SECRET_KEY") or not values.get("TOKEN_ENCRYPTION_KEY"):
        values = {"SECRET_KEY": secrets.token_urlsafe(48), "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode()}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Hub24 development secrets (make run). Do not use in production.\n")
            fh.writelines(f"{k}={v}\n" for k, v in values.items())
    return values
