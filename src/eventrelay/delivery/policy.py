"""Retry policy: exponential backoff with full jitter, Retry-After honoured, max age."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 600.0
    max_age: float = 4 * 3600.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt, after `attempts` failed ones.

        Full jitter (uniform in [0, min(cap, base * 2^(attempts-1))]) spreads retries of many
        events so a recovering vendor is not hit by all of them at once. A vendor's Retry-After
        wins: it knows when it will take requests again.
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return random.uniform(0, ceiling)

    def expired(self, published_at: float, at: float) -> bool:
        return at - published_at >= self.max_age
