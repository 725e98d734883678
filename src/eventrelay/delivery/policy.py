"""Retry policy: exponential backoff with full jitter, Retry-After honoured up to the cap,
max age."""

from __future__ import annotations

import random
from dataclasses import dataclass

# The last attempt of an event is made this long before it would expire (at most a tenth of
# the max age), so an event whose backoff reaches past its max age still gets that attempt.
LAST_ATTEMPT_MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 600.0
    max_age: float = 4 * 3600.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt, after `attempts` failed ones.

        Full jitter (uniform in [0, min(cap, base * 2^(attempts-1))]) spreads retries of many
        events so a recovering vendor is not hit by all of them at once. A vendor's Retry-After
        wins (it knows when it will take requests again) but never beyond the cap: one
        `Retry-After: 999999` must not park every event for days.
        """
        if retry_after is not None:
            return min(self.cap, max(0.0, retry_after))
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return random.uniform(0, ceiling)

    def next_attempt(
        self, attempts: int, retry_after: float | None, published_at: float, now: float
    ) -> float | None:
        """Delay before the next attempt, or None when the event has had its last one.

        A delay reaching past the max age is shortened to a last attempt just before the event
        expires, never turned into an expiry: a hint or a long backoff alone does not cost an
        event its remaining attempts."""
        delay = self.delay(attempts, retry_after)
        margin = min(LAST_ATTEMPT_MARGIN, self.max_age / 10)
        last_attempt_at = published_at + self.max_age - margin
        if now >= last_attempt_at:
            return None  # at or past the last attempt's time (even with a zero delay)
        if now + delay <= last_attempt_at:
            return delay
        return last_attempt_at - now

    def expired(self, published_at: float, at: float) -> bool:
        return at - published_at >= self.max_age
