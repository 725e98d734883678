"""Real services the tests use: skip with a reason when absent, fail under CI=true."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "EVENTRELAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("EVENTRELAY_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("EVENTRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(available: bool, what: str, how: str) -> None:
    """Skip (locally) or fail (CI=true) when a service the test needs is missing."""
    if available:
        return
    message = f"{what} is not reachable; {how}"
    if in_ci():
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)
