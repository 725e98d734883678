"""Organisation-wide rules, applied at ingest before any integration's:

    {"drop": [<condition>, ...],                      # FQL strings or structured objects
     "redact": ["properties.email", "context.traits.phone", ...],   # paths removed
     "hash": ["userId", "properties.order_ref", ...]}  # values replaced by their SHA-256

An event that any `drop` condition matches is dropped; the others lose every `redact` path and
have every `hash` path replaced, in that order (drop conditions see the event as received, so
an event can be dropped on a property that is also redacted). Hashing: a string is hashed as
its UTF-8 bytes, a number as its JSON text (`42`, `59.9`); the value becomes the lowercase hex
SHA-256 digest. Booleans and nulls are left as they are (they identify nobody); an object or an
array at a hashed path is removed (it has no single text to hash, and keeping it would leak).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from eventrelay.rules import paths
from eventrelay.rules.actions import ESSENTIAL
from eventrelay.rules.engine import Event, Predicate
from eventrelay.rules.errors import ExpressionError, RuleError, RulesInvalid
from eventrelay.rules.paths import MISSING, Path
from eventrelay.rules.spec import MAX_FILTERS, MAX_PATHS, parse_condition
from eventrelay.rules.tree import predicate

ORG_RULE = "org_rule"  # the reason an event an organisation rule dropped is counted under
KEYS = ("drop", "redact", "hash")


class OrgRules:
    """Compiled organisation rules. `decide(event)` returns the name of the drop condition
    that matched (`drop.0`), or None; `scrub(event)` returns the event with the listed paths
    redacted and hashed (a copy when anything changed: objects shared with other events of the
    request are never modified)."""

    __slots__ = ("drops", "hashed", "raw", "redacted")

    def __init__(
        self,
        drops: list[Predicate],
        redacted: list[Path],
        hashed: list[Path],
        raw: dict[str, list[Any]],
    ) -> None:
        self.drops = tuple(drops)
        self.redacted = tuple(redacted)
        self.hashed = tuple(hashed)
        self.raw = raw  # as saved, normalised: every key present

    @property
    def empty(self) -> bool:
        return not (self.drops or self.redacted or self.hashed)

    def decide(self, event: Event) -> str | None:
        for index, test in enumerate(self.drops):
            if test(event):
                return f"drop.{index}"
        return None

    def scrub(self, event: Event) -> Event:
        # One copy-on-write pass: the event and each object on a changed path are copied once,
        # on the first change (a few µs per event: this runs at ingest).
        out: Event | None = None
        copied: set[int] = set()
        for path in self.redacted:
            parent = _parent(out if out is not None else event, path)
            if parent is None or path[-1] not in parent:
                continue
            if out is None:
                out = dict(event)
                copied.add(id(out))
            writable = _writable(out, path, copied)
            assert writable is not None
            del writable[path[-1]]
        for path in self.hashed:
            parent = _parent(out if out is not None else event, path)
            value = parent.get(path[-1], MISSING) if parent is not None else MISSING
            if value is MISSING or value is None or isinstance(value, bool):
                continue
            if out is None:
                out = dict(event)
                copied.add(id(out))
            writable = _writable(out, path, copied)
            assert writable is not None
            if isinstance(value, str):
                writable[path[-1]] = hash_text(value)
            elif isinstance(value, int | float):
                writable[path[-1]] = hash_text(orjson.dumps(value).decode())
            else:
                del writable[path[-1]]  # an object or an array: no single text to hash
        return out if out is not None else event

    def apply(self, event: Event) -> tuple[Event | None, str | None]:
        """(the event after redaction and hashing, None) or (None, the drop rule)."""
        rule = self.decide(event)
        if rule is not None:
            return None, rule
        return self.scrub(event), None


def _parent(event: Event, path: Path) -> dict[str, Any] | None:
    """The object holding `path`'s last key, or None when the way is not all objects."""
    node: Any = event
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _writable(out: Event, path: Path, copied: set[int]) -> dict[str, Any] | None:
    """`path`'s parent in `out`, the objects on the way copied (once) so that nothing shared
    with the input changes."""
    node = out
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return None
        if id(child) not in copied:
            child = dict(child)
            node[key] = child
            copied.add(id(child))
        node = child
    return node


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _paths(raw: Any, where: str) -> list[Path]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise RulesInvalid([RuleError(where, "must be a list of property paths")])
    if len(raw) > MAX_PATHS:
        raise RulesInvalid([RuleError(where, f"at most {MAX_PATHS} paths")])
    out = []
    for index, text in enumerate(raw):
        try:
            path = paths.parse_path(text)
        except ExpressionError as exc:
            raise RulesInvalid([RuleError(f"{where}.{index}", exc.message)]) from None
        if len(path) == 1 and path[0] in ESSENTIAL:
            raise RulesInvalid([RuleError(f"{where}.{index}", f"{path[0]} cannot be changed")])
        out.append(path)
    return out


def compile_org_rules(raw: Any) -> OrgRules:
    """`raw` as saved; RulesInvalid names the field (`drop.1`, `hash.0`) and the position."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RulesInvalid([RuleError("", "must be an object with drop, redact, hash")])
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise RulesInvalid([RuleError(sorted(unknown)[0], "is not a known field")])
    conditions = raw.get("drop") or []
    if not isinstance(conditions, list):
        raise RulesInvalid([RuleError("drop", "must be a list of conditions")])
    if len(conditions) > MAX_FILTERS:
        raise RulesInvalid([RuleError("drop", f"at most {MAX_FILTERS} conditions")])
    drops = [predicate(parse_condition(c, f"drop.{i}")) for i, c in enumerate(conditions)]
    redacted = _paths(raw.get("redact") or [], "redact")
    hashed = _paths(raw.get("hash") or [], "hash")
    normal = {
        "drop": list(conditions),
        "redact": list(raw.get("redact") or []),
        "hash": list(raw.get("hash") or []),
    }
    return OrgRules(drops, redacted, hashed, normal)
