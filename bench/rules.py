"""Cost of routing rules per event per integration (`python -m bench.rules`, or the `rules`
phase of `make bench`). Prints its figures; asserts nothing.

- compiled trigger + 3 filters (the issue's budget: under 5 µs per event);
- the same with a 4-entry mapping transformation;
- organisation rules as ingest applies them (2 drop conditions that do not match, 2 paths
  redacted, 2 hashed: the cost of an event that is kept);
- a 20-line JavaScript transformation function in the V8 sandbox (budget: under 100 µs), as
  a worker calls it (a pulled batch in one call into the isolate), and one event per call.

Each figure is the best of 15 timed runs (the machine is shared: the minimum is the cost, the
rest is other processes), in microseconds per event.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from eventrelay.rules import compile_org_rules, compile_rules

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-42",
    "messageId": "m-1",
    "properties": {"total": 59.9, "currency": "EUR", "order_id": "o-1", "coupon": None},
    "context": {"page": {"url": "https://shop.example/checkout"}, "ip": "203.0.113.9"},
    "traits": {"email": "Ada@Example.com"},
}

TRIGGER_AND_FILTERS: dict[str, Any] = {
    "trigger": 'type = "track" and match(event, "Order *")',
    "filters": [
        {"if": "properties.total < 1", "action": "drop"},
        {"if": 'contains(context.page.url, "/admin")', "action": "drop"},
        {
            "if": {
                "logical": "and",
                "conditions": [{"property": "event", "operator": "is", "values": ["Debug"]}],
            },
            "action": "sample",
            "percent": 10,
        },
    ],
}

MAPPING = {
    "mapping": {
        "properties.email": "lowercase(traits.email)",
        "properties.value": "to_number(properties.total)",
        "properties.label": '"Order {{properties.order_id}}"',
        "properties.source": '"web"',
    }
}

FUNCTION_SOURCE = """
function transform(event) {
  const props = event.properties || {};
  const total = Number(props.total || 0);
  if (event.event === "Debug") {
    return null;
  }
  const email = (event.traits && event.traits.email) || "";
  props.email = email.trim().toLowerCase();
  props.value_cents = Math.round(total * 100);
  props.tier = total > 100 ? "high" : total > 20 ? "mid" : "low";
  const tags = [];
  for (const key of Object.keys(props)) {
    if (key.startsWith("utm_")) {
      tags.push(key.slice(4));
    }
  }
  props.tags = tags;
  event.properties = props;
  event.event = event.event.replace(/ /g, "_").toLowerCase();
  return event;
}
"""


ORG_RULES: dict[str, Any] = {
    "drop": ['match(lowercase(context.userAgent), "*bot*")', 'context.ip = "10.0.0.1"'],
    "redact": ["traits.email", "context.page.url"],
    "hash": ["userId", "properties.order_id"],
}


def per_event_us(apply: Callable[[], Any], number: int) -> float:
    best = min(timeit.repeat(apply, number=number, repeat=15))
    return round(best / number * 1e6, 2)


def phase_rules() -> dict[str, Any]:
    results: dict[str, Any] = {}
    filters = compile_rules(TRIGGER_AND_FILTERS)
    results["rules_trigger_3_filters_us"] = per_event_us(lambda: filters.apply(EVENT), 20_000)
    mapped = compile_rules({**TRIGGER_AND_FILTERS, "transformation": MAPPING})
    results["rules_trigger_3_filters_mapping_us"] = per_event_us(
        lambda: mapped.apply(EVENT), 20_000
    )
    org = compile_org_rules(ORG_RULES)
    results["rules_org_us"] = per_event_us(lambda: org.apply(EVENT), 20_000)
    try:
        function = compile_rules(
            {"transformation": {"function": {"language": "javascript", "source": FUNCTION_SOURCE}}}
        )
    except Exception as exc:  # no sandbox here: say so instead of a figure
        results["rules_js_function_error"] = f"{type(exc).__name__}: {exc}"
    else:
        # As a worker runs it: the events of a pulled batch in one call into the isolate.
        batch = [EVENT] * 100
        best = min(timeit.repeat(lambda: function.apply_many(batch), number=5, repeat=7))
        results["rules_js_function_20_lines_us"] = round(best / (5 * len(batch)) * 1e6, 2)
        results["rules_js_function_20_lines_single_us"] = per_event_us(
            lambda: function.apply(EVENT), 200
        )
        function.close()
    return results


def print_rules(results: dict[str, Any]) -> None:
    if "rules_trigger_3_filters_us" not in results:
        return
    print(
        f"rules: trigger + 3 filters   {results['rules_trigger_3_filters_us']:>10} µs/event"
        "  (budget 5)"
    )
    print(
        f"rules: + 4-entry mapping     {results['rules_trigger_3_filters_mapping_us']:>10} µs/event"
    )
    if "rules_org_us" in results:
        print(
            f"rules: organisation rules    {results['rules_org_us']:>10} µs/event"
            "  (at ingest: 2 drops, 2 redacted, 2 hashed)"
        )
    if "rules_js_function_20_lines_us" in results:
        print(
            f"rules: 20-line JS function   {results['rules_js_function_20_lines_us']:>10} µs/event"
            "  (budget 100; batches of 100 as a worker calls it)"
        )
        print(
            "rules: JS, one event a call "
            f"{results['rules_js_function_20_lines_single_us']:>10} µs/event"
        )
    else:
        print(f"rules: JS function: {results.get('rules_js_function_error')}")


if __name__ == "__main__":
    print_rules(phase_rules())
