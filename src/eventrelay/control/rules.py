"""Routing rules in the control plane: validation on save (a 422 naming the field and the
position), and `POST /v1/admin/rules/evaluate` and `/v1/admin/organization/rules/evaluate`
(rules and sample events in, results out, nothing saved).

Rules live in the integration's config under the reserved key `rules`: they are audited with
diffs and propagated to workers like any other config change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from eventrelay.core.events import InvalidEvent, Received, normalize
from eventrelay.errors import ApiError, validation_error
from eventrelay.rules import (
    CompiledRules,
    Decision,
    OrgRules,
    RulesInvalid,
    compile_org_rules,
    compile_rules,
)

RULES_KEY = "rules"


def split_rules(config: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """(the vendor's config, the rules or None)."""
    vendor = {k: v for k, v in config.items() if k != RULES_KEY}
    return vendor, config.get(RULES_KEY)


def _as_422(exc: RulesInvalid, prefix: str) -> ApiError:
    return validation_error(
        [
            {
                "field": ".".join(p for p in (prefix, e.field) if p) or "body",
                "message": e.message
                + (f" (at position {e.position})" if e.position is not None else ""),
                **({"position": e.position} if e.position is not None else {}),
            }
            for e in exc.errors
        ]
    )


def compile_or_422(raw: Any, prefix: str) -> CompiledRules:
    try:
        return compile_rules(raw)
    except RulesInvalid as exc:
        raise _as_422(exc, prefix) from None


def org_rules_or_422(raw: Any, prefix: str = "") -> OrgRules:
    """Organisation rules (rules.org) as PUT: a 422 naming the field (`drop.1`) and position."""
    try:
        return compile_org_rules(raw)
    except RulesInvalid as exc:
        raise _as_422(exc, prefix) from None


async def validate(raw: Any, prefix: str = "config.rules") -> None:
    """Raise a 422 if `raw` is not valid rules (functions are compiled and dry-run, in a
    thread: the sandbox must not run on the event loop)."""
    if raw is None:
        return

    def check() -> None:
        compile_or_422(raw, prefix).close()

    await asyncio.to_thread(check)


def present_decision(index: int, decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": index,
        "delivered": not decision.filtered,
        "matched": decision.matched,
    }
    if decision.filtered:
        out["reason"] = decision.reason
        out["rule"] = decision.rule
        if decision.error:
            out["error"] = decision.error
    else:
        out["events"] = decision.events
    return out


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: dict[str, Any] = Field(description="Rules as in an integration's config.rules.")
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=100)] = Field(
        description="Sample events (at most 100)."
    )


def _encodable(result: dict[str, Any]) -> dict[str, Any]:
    """The result, or why its events could not be stored or sent: JSON has no lone surrogates
    (`"\\ud800"` parses but cannot be written back), which ingest refuses the same way."""
    try:
        orjson.dumps(result)
    except orjson.JSONEncodeError as exc:
        problem = "surrogate" in str(exc) and "contains a string with a lone surrogate"
        return {
            "index": result["index"],
            "delivered": False,
            "reason": "invalid_event",
            "error": f"event: {problem or 'cannot be written as JSON'}",
        }
    return result


def evaluate(body: EvaluateBody) -> dict[str, Any]:
    compiled = compile_or_422(body.rules, "rules")
    try:
        results = [
            _encodable(present_decision(i, compiled.apply(e))) for i, e in enumerate(body.events)
        ]
    finally:
        compiled.close()
    return {"results": results}


class OrgEvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: dict[str, Any] = Field(
        description="Organisation rules as in PUT /v1/admin/organization/rules."
    )
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=100)] = Field(
        description="Sample events (at most 100), as a source would send them in a batch."
    )


def evaluate_org(body: OrgEvaluateBody) -> dict[str, Any]:
    """Each sample as ingest treats it: normalised (messageId, timestamps and the rest filled
    in, as for an item of /v1/batch), then dropped or redacted and hashed. A sample ingest would
    refuse says why instead."""
    compiled = org_rules_or_422(body.rules, "rules")
    received = Received.at(datetime.now(UTC))
    results: list[dict[str, Any]] = []
    for index, sample in enumerate(body.events):
        try:
            event = normalize(sample, received)
        except InvalidEvent as exc:
            results.append(
                {
                    "index": index,
                    "delivered": False,
                    "reason": "invalid_event",
                    "error": f"{exc.error.field}: {exc.error.message}",
                }
            )
            continue
        kept, rule = compiled.apply(event)
        if kept is None:
            results.append({"index": index, "delivered": False, "reason": "org_rule", "rule": rule})
        else:
            results.append(_encodable({"index": index, "delivered": True, "events": [kept]}))
    return {"results": results}
