"""Compiled rules of one integration and their application to one event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventrelay.rules import actions, paths
from eventrelay.rules.errors import TransformError
from eventrelay.rules.paths import MISSING, Path

# Reasons an event is not delivered, as counted under `filtered` in the metrics.
TRIGGER, FILTER, SAMPLE, TRANSFORMATION, TRANSFORMATION_ERROR = (
    "trigger",
    "filter",
    "sample",
    "transformation",
    "transformation_error",
)

Predicate = Callable[[Any], bool]
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Filter:
    name: str  # "filters.0"
    test: Predicate | None  # None: always
    action: str
    percent: float = 100.0
    seed: str = ""
    paths: tuple[Path, ...] = ()
    allowed: dict[str, list[Path]] = field(default_factory=dict)


Result = Event | list[Event] | None


class Transformation:
    """A mapping or a function: event -> event, list of events, or None (drop)."""

    # True when a call may take long (a function in the sandbox): run it off the event loop.
    slow = False

    def __call__(self, event: Event) -> Result:
        raise NotImplementedError

    def batch(self, events: list[Event]) -> list[Result | Exception]:
        """Each event's result, or the exception it raised."""
        out: list[Result | Exception] = []
        for event in events:
            try:
                out.append(self(event))
            except Exception as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        """Release what the transformation holds (a JavaScript isolate)."""


class Mapping(Transformation):
    def __init__(self, targets: list[tuple[Path, Callable[[Any], Any]]]) -> None:
        self._targets = targets

    def __call__(self, event: Event) -> Event:
        # Every expression reads the event as it came in; the output shares what it does not
        # change (only the objects on a target's way are copied, each once).
        values = [(path, value(event)) for path, value in self._targets]
        out = dict(event)
        copied: set[int] = {id(out)}
        for path, value in values:
            if value is MISSING:
                continue  # a path that is absent leaves the target as it is
            node = out
            for key in path[:-1]:
                child = node.get(key, MISSING)
                if child is MISSING:
                    child = {}
                elif not isinstance(child, dict):
                    where = paths.render_path(path)
                    raise TransformError(f"cannot set {where}: {key} is not an object")
                elif id(child) not in copied:
                    child = dict(child)
                copied.add(id(child))
                node[key] = child
                node = child
            node[path[-1]] = value
        return out


class Decision:
    """The outcome of the rules for one event: `events` to deliver (usually one; a function
    may return several), or none with the `reason` and the `rule` that stopped it; `matched`
    lists the rules whose condition held (for preview and evaluate)."""

    __slots__ = ("changed", "error", "events", "matched", "reason", "rule")

    def __init__(
        self,
        events: list[Event],
        reason: str | None = None,
        rule: str | None = None,
        error: str | None = None,
        changed: bool = False,
        matched: list[str] | None = None,
    ) -> None:
        self.events = events
        self.reason = reason
        self.rule = rule
        self.error = error
        self.changed = changed
        self.matched = matched if matched is not None else []

    def __repr__(self) -> str:
        return (
            f"Decision(reason={self.reason!r}, rule={self.rule!r}, changed={self.changed},"
            f" matched={self.matched!r})"
        )

    @property
    def filtered(self) -> bool:
        return self.reason is not None


class CompiledRules:
    def __init__(
        self,
        trigger: Predicate | None,
        filters: list[Filter],
        transformation: Transformation | None,
    ) -> None:
        self.trigger = trigger
        self.filters = filters
        self.transformation = transformation
        self._steps = tuple((f.test, f) for f in filters)

    @property
    def empty(self) -> bool:
        return self.trigger is None and not self.filters and self.transformation is None

    def close(self) -> None:
        if self.transformation is not None:
            self.transformation.close()

    @property
    def slow(self) -> bool:
        return self.transformation is not None and self.transformation.slow

    def _before(self, event: Event) -> Decision | tuple[Event, list[str]]:
        """Trigger and filters: a final Decision, or the event going on to the transformation
        with the rules that matched."""
        matched: list[str] = []
        trigger = self.trigger
        if trigger is not None:
            if not trigger(event):
                return Decision([], TRIGGER, "trigger", None, False, matched)
            matched.append("trigger")
        current = event
        for test, rule in self._steps:
            if test is not None and not test(current):
                continue
            matched.append(rule.name)
            if rule.action == "drop":
                return Decision([], FILTER, rule.name, None, False, matched)
            if rule.action == "sample":
                if not actions.in_sample(current, rule.percent, rule.seed):
                    return Decision([], SAMPLE, rule.name, None, False, matched)
            elif rule.action == "drop_properties":
                current = actions.drop_properties(current, list(rule.paths))
            else:
                current = actions.allow_properties(current, rule.allowed)
        return current, matched

    @staticmethod
    def _after(result: Result | Exception, matched: list[str]) -> Decision:
        matched.append("transformation")
        if isinstance(result, TransformError):
            return Decision([], TRANSFORMATION_ERROR, "transformation", str(result), False, matched)
        if isinstance(result, Exception):  # fail closed: a half-transformed event is never sent
            error = f"the transformation failed: {type(result).__name__}"
            return Decision([], TRANSFORMATION_ERROR, "transformation", error, False, matched)
        events = result if isinstance(result, list) else [result] if result is not None else []
        if not events:
            return Decision([], TRANSFORMATION, "transformation", None, False, matched)
        return Decision(events, None, None, None, True, matched)

    def apply(self, event: Event) -> Decision:
        before = self._before(event)
        if isinstance(before, Decision):
            return before
        current, matched = before
        if self.transformation is None:
            return Decision([current], None, None, None, current is not event, matched)
        try:
            result: Result | Exception = self.transformation(current)
        except Exception as exc:
            result = exc
        return self._after(result, matched)

    def apply_many(self, events: list[Event]) -> list[Decision]:
        """`apply` for several events; a function transformation gets them in one batch."""
        if self.transformation is None or not self.transformation.slow:
            return [self.apply(e) for e in events]
        decisions: list[Decision | None] = []
        waiting: list[tuple[int, Event, list[str]]] = []
        for event in events:
            before = self._before(event)
            if isinstance(before, Decision):
                decisions.append(before)
            else:
                waiting.append((len(decisions), *before))
                decisions.append(None)
        if waiting:
            results = self.transformation.batch([current for _, current, _ in waiting])
            for (index, _, matched), result in zip(waiting, results, strict=True):
                decisions[index] = self._after(result, matched)
        return [d for d in decisions if d is not None]
