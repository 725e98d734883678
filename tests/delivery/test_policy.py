"""Issue 9.5: Retry-After is capped, and no delay (hint or backoff) expires an event early."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.delivery.policy import RetryPolicy

POLICY = RetryPolicy(base=1.0, cap=600.0, max_age=4 * 3600.0)


@given(attempts=st.integers(1, 60), hint=st.none() | st.floats(-1e9, 1e12))
def test_no_delay_beyond_the_cap(attempts: int, hint: float | None) -> None:
    assert 0.0 <= POLICY.delay(attempts, hint) <= POLICY.cap


def test_an_absurd_retry_after_waits_the_cap() -> None:
    assert POLICY.delay(1, 999_999) == POLICY.cap


@given(
    attempts=st.integers(1, 60),
    hint=st.none() | st.floats(0, 1e12),
    age=st.floats(0, 4 * 3600.0 - 1.0),
    max_age=st.sampled_from([0.6, 40.0, 4 * 3600.0]),
)
def test_a_delay_never_expires_an_event_with_life_left(
    attempts: int, hint: float | None, age: float, max_age: float
) -> None:
    """Whatever the hint, an event with life left gets another attempt, made before it would
    expire (the last one at most a second, or a tenth of the max age, before)."""
    policy = RetryPolicy(base=1.0, cap=600.0, max_age=max_age)
    now = 1_000_000.0
    published = now - age * max_age / (4 * 3600.0)
    delay = policy.next_attempt(attempts, hint, published, now)
    margin = min(1.0, max_age / 10)
    if now - published < max_age - margin:
        assert delay is not None
        assert not policy.expired(published, now + delay)
        assert delay <= policy.cap
    else:
        assert delay is None


def test_the_last_attempt_comes_just_before_expiry_then_it_expires() -> None:
    policy = RetryPolicy(base=1.0, cap=600.0, max_age=40.0)
    published = 0.0
    delay = policy.next_attempt(1, 999_999, published, now=10.0)
    assert delay == 29.0  # at 39 s: one second before the 40 s max age
    assert policy.next_attempt(2, 999_999, published, now=39.0) is None
