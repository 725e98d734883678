"""Admin roles, ordered: each role can do everything the roles below it can."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "editor", "admin", "owner")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def at_least(role: str, required: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[required]
