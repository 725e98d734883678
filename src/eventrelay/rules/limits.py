"""The JavaScript sandbox's limits in this process, set once at start from the settings
(`Runtime.start`); kept apart from rules/js.py so that setting them does not load V8."""

from __future__ import annotations

TIMEOUT_SECONDS = 0.05  # per event (EVENTRELAY_RULES_JS_TIMEOUT_MS)
MEMORY_BYTES = 64 * 1024 * 1024  # per isolate (EVENTRELAY_RULES_JS_MEMORY_MB)

current = {"timeout": TIMEOUT_SECONDS, "memory": float(MEMORY_BYTES)}


def set_limits(timeout: float, memory: int) -> None:
    """The limits of functions compiled from now on in this process."""
    current["timeout"], current["memory"] = float(timeout), float(memory)
