"""A local Bitrix24 for development, demos, tests and benchmarks. See README.md."""
from .client import Portal, SandboxError

__all__ = ["Portal", "SandboxError"]
