"""Routing rules: triggers, filters, sampling, property lists and transformations.

A self-contained engine (no imports from the rest of eventrelay) so that delivery, preview,
`/v1/admin/rules/evaluate` and the ingest-side tap share one implementation:

- `fql` parses Segment's Filter Query Language, `structured` reads Krenalis-style condition
  objects; both compile to the same predicate tree (`tree`).
- `spec.compile_rules` validates an integration's `rules` (errors carry field and position)
  and returns `CompiledRules`, whose `apply(event)` says deliver (the events after rules) or
  filtered (with the reason and the rule that decided).
- `org.compile_org_rules` compiles an organisation's rules (drop, redact, hash), applied at
  ingest before any integration's.
"""

from eventrelay.rules.engine import CompiledRules, Decision
from eventrelay.rules.errors import RuleError, RulesInvalid
from eventrelay.rules.org import ORG_RULE, OrgRules, compile_org_rules
from eventrelay.rules.spec import compile_rules

__all__ = [
    "ORG_RULE",
    "CompiledRules",
    "Decision",
    "OrgRules",
    "RuleError",
    "RulesInvalid",
    "compile_org_rules",
    "compile_rules",
]
