"""UTC time helpers: everything is stored and shown in UTC, rendered ISO 8601 with `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_seconds(value: datetime | None) -> str | None:
    """Resource timestamps, as in the admin API contract: 2026-01-15T10:30:00Z."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(value: datetime | None) -> str | None:
    """Event and log timestamps keep milliseconds: 2026-01-15T10:30:00.123Z."""
    if value is None:
        return None
    v = value.astimezone(UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse ISO 8601 with any offset (or `Z`); naive values are taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
