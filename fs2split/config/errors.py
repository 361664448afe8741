"""Errors of the config layer, kept apart so callers catch them without importing a secret manager."""

from __future__ import annotations


class SecretUnavailable(Exception):
    """A referenced secret could not be read. ``reference`` names the secret, ``reason`` says why."""

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(f"{reference}: {reason}")
