"""What a filter does when its condition matches: drop, sample, allow or drop properties."""

from __future__ import annotations

import hashlib
from typing import Any

from eventrelay.rules import paths

ESSENTIAL = frozenset({"type", "messageId"})


def sample_key(event: dict[str, Any]) -> str:
    """Who an event belongs to: a user is in or out of a sample on every event."""
    for name in ("userId", "anonymousId", "messageId"):
        value = event.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return ""


def in_sample(event: dict[str, Any], percent: float, seed: str) -> bool:
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}\x00{sample_key(event)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < percent / 100 * 2**64


def drop_properties(event: dict[str, Any], dropped: list[paths.Path]) -> dict[str, Any]:
    for path in dropped:
        event = paths.delete_path(event, path)
    return event


def allow_properties(event: dict[str, Any], allowed: dict[str, list[paths.Path]]) -> dict[str, Any]:
    """`allowed`: per top-level object (properties, traits, context...), the paths kept in it;
    objects not named and the top-level fields stay as they are."""
    out = dict(event)
    for root, kept in allowed.items():
        node = event.get(root)
        if isinstance(node, dict):
            out[root] = paths.keep_only(node, kept)
    return out
