"""Rule errors: at save time a list of (field, message, position); at run time one exception."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleError:
    """One invalid part of a rule. `field` is a dotted path inside the rules object
    (`filters.1.if`); `position` the 1-based column in an expression, when there is one."""

    field: str
    message: str
    position: int | None = None

    def under(self, prefix: str) -> RuleError:
        field = f"{prefix}.{self.field}" if self.field else prefix
        return RuleError(field, self.message, self.position)


class RulesInvalid(ValueError):
    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class ExpressionError(ValueError):
    """An expression that does not parse or names an unknown function."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class TransformError(RuntimeError):
    """A transformation failed on one event (the event is filtered, never half-sent)."""
