"""The demo portal for `make run`: a sandbox with demo data, with Hub24 registered and installed in it."""
from __future__ import annotations

from typing import Callable


def start_demo_portal(children, env: dict[str, str], port: int, say: Callable[[str], None]) -> dict[str, str]:
    """Start the sandbox portal; return the environment Hub24 needs to talk to it."""
    return {}


def after_start(env: dict[str, str], base_url: str, say: Callable[[str], None]) -> None:
    """Steps that need the web app up (installing Hub24 into the sandbox portal)."""
