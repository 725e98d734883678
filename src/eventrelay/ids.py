"""Resource IDs: a type prefix and a random base62 tail (never reused: 131 random bits)."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(22)}"


def new_secret_token(prefix: str, length: int = 40) -> str:
    """A bearer secret (admin token, write key): prefix makes it recognisable in leak scanners."""
    return f"{prefix}_{random_base62(length)}"
