// Routing rules in the console: the JSON editor's text parsed, the README's examples as
// templates, results of /v1/admin/rules/evaluate and a 422's fields in words.

import type { ErrorDetail } from "./errors";

type Json = Record<string, unknown>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parseJson(text: string, what: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // The browser's own message says where (a position, or the text near the error).
    return { ok: false, message: `${what}: not valid JSON (${message})` };
  }
}

/** The editor's text as rules: empty means no rules (null); otherwise a JSON object. */
export function parseRules(text: string, what = "The rules"): Parsed<Json | null> {
  if (!text.trim()) return { ok: true, value: null };
  const parsed = parseJson(text, what);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, message: `${what} must be a JSON object.` };
  }
  return { ok: true, value: value as Json };
}

/** Sample events: one event object or a list of them. */
export function parseEvents(text: string): Parsed<Json[]> {
  const parsed = parseJson(text, "The sample events");
  if (!parsed.ok) return parsed;
  const list = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  if (list.length === 0) return { ok: false, message: "Give at least one sample event." };
  if (list.some((e) => !e || typeof e !== "object" || Array.isArray(e))) {
    return { ok: false, message: "Each sample event must be a JSON object." };
  }
  return { ok: true, value: list as Json[] };
}

export function formatRules(rules: unknown): string {
  return rules === undefined || rules === null ? "" : JSON.stringify(rules, null, 2);
}

/** The README's examples: a trigger or transformation replaces, a filter is appended. */
export const RULE_TEMPLATES: { label: string; part: Json }[] = [
  { label: "Trigger", part: { trigger: 'type = "track" and match(event, "Order *")' } },
  { label: "Drop filter", part: { filters: [{ if: 'contains(context.page.url, "/admin")', action: "drop" }] } },
  { label: "Sample", part: { filters: [{ if: 'type = "track"', action: "sample", percent: 25 }] } },
  {
    label: "Allow properties",
    part: {
      filters: [
        {
          if: { logical: "and", conditions: [{ property: "event", operator: "is", values: ["Order Refunded"] }] },
          action: "allow_properties",
          paths: ["properties.total", "properties.currency"],
        },
      ],
    },
  },
  { label: "Drop properties", part: { filters: [{ action: "drop_properties", paths: ["context.ip", "properties.card.number"] }] } },
  {
    label: "Mapping",
    part: {
      transformation: {
        mapping: {
          "properties.email": "lowercase(coalesce(traits.email, context.traits.email))",
          "properties.value": "to_number(properties.revenue)",
          "properties.label": '"Order {{properties.order_id}}"',
        },
      },
    },
  },
  {
    label: "JavaScript function",
    part: {
      transformation: {
        function: {
          language: "javascript",
          source:
            "function transform(event) {\n  if (event.event === 'Internal') return null;\n  event.properties.email = (event.traits.email || '').toLowerCase();\n  return event;\n}",
        },
      },
    },
  },
];

export const ORG_TEMPLATES: { label: string; part: Json }[] = [
  { label: "Drop bots", part: { drop: ['match(lowercase(context.userAgent), "*bot*")'] } },
  { label: "Drop staging", part: { drop: ['context.ip = "10.0.0.1" or match(context.page.url, "https://staging.*")'] } },
  { label: "Redact", part: { redact: ["properties.email", "context.traits.phone"] } },
  { label: "Hash", part: { hash: ["userId", "properties.order_ref"] } },
];

/** `rules` with a template added: lists are appended to, anything else is replaced. */
export function addTemplate(rules: Json | null, part: Json): Json {
  const out: Json = { ...(rules ?? {}) };
  for (const [key, value] of Object.entries(part)) {
    const current = out[key];
    out[key] = Array.isArray(value) && Array.isArray(current) ? [...current, ...value] : value;
  }
  return out;
}

/** One result of /v1/admin/rules/evaluate. */
export interface RuleResult {
  index: number;
  delivered: boolean;
  matched?: unknown;
  reason?: string;
  rule?: unknown;
  error?: string;
  events?: Json[];
}

const REASONS: Record<string, string> = {
  trigger: "the trigger did not match",
  filter: "a drop filter matched",
  sample: "sampled out",
  transformation: "the transformation returned nothing",
  transformation_error: "the transformation failed",
  org_rule: "an organisation drop condition matched",
};

/** "kept" or "filtered: why" for one sample event. */
export function describeResult(result: RuleResult): string {
  if (result.delivered) {
    const n = result.events?.length ?? 1;
    return n === 1 ? "kept" : `kept, as ${n} events`;
  }
  if (result.reason === "invalid_event") return `refused by ingest: ${result.error ?? "not a valid event"}`;
  const why = REASONS[result.reason ?? ""] ?? result.reason ?? "filtered";
  const rule = typeof result.rule === "string" && result.rule && result.rule !== result.reason ? ` (${fieldInWords(result.rule)})` : "";
  const error = result.error ? `: ${result.error}` : "";
  return `filtered: ${why}${rule}${error}`;
}

/** A rule's field in words: `config.rules.filters.1.if` is "filter 2, its condition". */
export function fieldInWords(field: string): string {
  if (/^config\.(?!rules\b)/.test(field)) return field; // the vendor config's, not a rule
  const parts = field.replace(/^(config\.)?rules\.?/, "").split(".").filter(Boolean);
  const words: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const next = parts[i + 1];
    if ((part === "filters" || part === "drop" || part === "redact" || part === "hash" || part === "paths") && next !== undefined && /^\d+$/.test(next)) {
      const noun = { filters: "filter", drop: "drop condition", redact: "redacted path", hash: "hashed path", paths: "path" }[part];
      words.push(`${noun} ${Number(next) + 1}`);
      i++;
    } else if (part === "if") words.push("its condition");
    else if (part === "mapping") {
      words.push(`mapping of ${parts.slice(i + 1).join(".") || "(all)"}`);
      break;
    } else words.push(part);
  }
  return words.join(", ") || "the rules";
}

/** A 422's details in words: where, and the position inside an expression or source. */
export function detailInWords(detail: ErrorDetail): string {
  const message = detail.message.replace(/ \(at position \d+\)$/, "");
  const at = typeof detail.position === "number" ? ` at character ${detail.position}` : "";
  return `In ${fieldInWords(detail.field)}${at}: ${message}`;
}

/** An integration's config without its rules (the vendor's, as the catalog's schema knows
 * it: the generated form would refuse `rules` as an unknown field) and the rules. */
export function splitRules(config: Record<string, unknown> | undefined): [Record<string, unknown>, unknown] {
  const { rules, ...vendor } = config ?? {};
  return [vendor, rules];
}

/** The vendor config with the rules put back (none: left out, which removes them). */
export function withRules(vendor: Record<string, unknown>, rules: unknown): Record<string, unknown> {
  return rules === undefined || rules === null ? vendor : { ...vendor, rules };
}
