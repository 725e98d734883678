"""Password hashing with Argon2id (argon2-cffi, its RFC 9106 low-memory profile), off the event
loop: one hash costs tens of milliseconds of CPU."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from eventrelay.errors import ApiError

MIN_LENGTH = 12
MAX_LENGTH = 256  # hashing cost grows with length: a bound keeps login cheap to refuse

_HASHER = PasswordHasher()
# Verified when the email is unknown, so that the answer takes as long as for a real account.
_DUMMY = _HASHER.hash("not a password of anyone: timing equaliser")


def check_policy(password: str, email: str) -> None:
    problem = None
    if len(password) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters"
    elif len(password) > MAX_LENGTH:
        problem = f"must be at most {MAX_LENGTH} characters"
    elif password.strip().lower() == email.lower():
        problem = "must not be the email address"
    if problem:
        raise ApiError(
            422,
            "validation_error",
            f"password {problem}",
            details=[{"field": "password", "message": problem}],
        )


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """False for a wrong password and for no stored hash (the dummy is verified then)."""
    return await anyio.to_thread.run_sync(_verify, stored, password)
