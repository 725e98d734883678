"""UTC time helpers: everything is stored and shown in UTC, rendered ISO 8601 with `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# The epoch-millisecond range a datetime can hold (years 1 to 9999).
MIN_EPOCH_MS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MILLISECOND
MAX_EPOCH_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MILLISECOND


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


_SECONDS: dict[int, str] = {}


def iso_from_epoch_ms(ms: int) -> str:
    """Fast ISO 8601 (milliseconds, `Z`) for epoch milliseconds: the ingest hot path formats two
    timestamps per event, and events of one batch share their seconds (cached)."""
    seconds, millis = divmod(ms, 1000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S."
        )
    return prefix + str(millis).zfill(3) + "Z"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return (value - _EPOCH) // _MILLISECOND


def parse_iso(value: str) -> datetime:
    """Parse ISO 8601 with any offset (or `Z`); naive values are taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
