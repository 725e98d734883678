import { describe, expect, it } from "vitest";

import { formSchema, toApi } from "./schemaForm";
import {
  addTemplate,
  describeResult,
  detailInWords,
  fieldInWords,
  formatRules,
  parseEvents,
  parseRules,
  RULE_TEMPLATES,
  splitRules,
  withRules,
} from "./rules";

describe("rules editor", () => {
  it("reads empty text as no rules and an object as rules", () => {
    expect(parseRules("  ")).toEqual({ ok: true, value: null });
    expect(parseRules('{"trigger": "type = \\"track\\""}')).toEqual({ ok: true, value: { trigger: 'type = "track"' } });
  });

  it("says where the JSON breaks and refuses what is not an object", () => {
    const broken = parseRules('{\n  "trigger": }');
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.message).toMatch(/^The rules: not valid JSON \(.+\)$/s);
    expect(parseRules("[1]")).toEqual({ ok: false, message: "The rules must be a JSON object." });
  });

  it("takes one sample event or a list", () => {
    expect(parseEvents('{"type": "track"}')).toEqual({ ok: true, value: [{ type: "track" }] });
    expect(parseEvents('[{"type": "a"}, {"type": "b"}]')).toEqual({ ok: true, value: [{ type: "a" }, { type: "b" }] });
    expect(parseEvents("[]").ok).toBe(false);
    expect(parseEvents("[1]").ok).toBe(false);
  });

  it("adds templates: filters are appended, a trigger replaced", () => {
    const trigger = RULE_TEMPLATES.find((t) => t.label === "Trigger")!.part;
    const drop = RULE_TEMPLATES.find((t) => t.label === "Drop filter")!.part;
    const sample = RULE_TEMPLATES.find((t) => t.label === "Sample")!.part;
    let rules = addTemplate(null, trigger);
    rules = addTemplate(rules, drop);
    rules = addTemplate(rules, sample);
    rules = addTemplate({ ...rules, trigger: "old" }, trigger);
    expect(rules.trigger).toBe(trigger.trigger);
    expect((rules.filters as { action: string }[]).map((f) => f.action)).toEqual(["drop", "sample"]);
    expect(formatRules(null)).toBe("");
    expect(JSON.parse(formatRules(rules))).toEqual(rules);
  });
});

describe("rule results and errors in words", () => {
  it("says kept or filtered and why", () => {
    expect(describeResult({ index: 0, delivered: true, events: [{}] })).toBe("kept");
    expect(describeResult({ index: 0, delivered: true, events: [{}, {}] })).toBe("kept, as 2 events");
    expect(describeResult({ index: 1, delivered: false, reason: "trigger", rule: "trigger" })).toBe("filtered: the trigger did not match");
    expect(describeResult({ index: 2, delivered: false, reason: "filter", rule: "filters.1" })).toBe("filtered: a drop filter matched (filter 2)");
    expect(describeResult({ index: 3, delivered: false, reason: "transformation_error", error: "boom" })).toBe(
      "filtered: the transformation failed: boom",
    );
  });

  it("says which organisation drop condition matched, or why ingest would refuse a sample", () => {
    expect(describeResult({ index: 0, delivered: false, reason: "org_rule", rule: "drop.1" })).toBe(
      "filtered: an organisation drop condition matched (drop condition 2)",
    );
    expect(describeResult({ index: 1, delivered: false, reason: "invalid_event", error: "event: required for a track" })).toBe(
      "refused by ingest: event: required for a track",
    );
  });

  it("names a 422's field and position", () => {
    expect(fieldInWords("config.rules.trigger")).toBe("trigger");
    expect(fieldInWords("config.rules.filters.1.if")).toBe("filter 2, its condition");
    expect(fieldInWords("rules.transformation.mapping.properties.email")).toBe("transformation, mapping of properties.email");
    expect(fieldInWords("drop.0")).toBe("drop condition 1");
    expect(fieldInWords("hash.2")).toBe("hashed path 3");
    expect(fieldInWords("config.url")).toBe("config.url");
    expect(
      detailInWords({ field: "config.rules.trigger", message: "unexpected end of expression (at position 19)", position: 19 }),
    ).toBe("In trigger at character 19: unexpected end of expression");
  });
});

describe("the integration form", () => {
  it("edits the vendor config without the rules and sends them back as stored", () => {
    const rules = { trigger: 'type = "track"' };
    const [vendor, stored] = splitRules({ url: "https://example.com", headers: { "X-Key": "***" }, rules });
    expect(vendor).toEqual({ url: "https://example.com", headers: { "X-Key": "***" } });
    const schema = formSchema({ type: "object", additionalProperties: false, properties: { url: { type: "string" } } });
    expect(withRules(toApi(schema, { url: "https://example.org" }), stored)).toEqual({ url: "https://example.org", rules });
    expect(withRules({ url: "u" }, undefined)).toEqual({ url: "u" });
    expect(splitRules(undefined)).toEqual([{}, undefined]);
  });
});
