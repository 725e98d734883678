import { describe, expect, it } from "vitest";

import { describeError } from "./errors";
import { LiveBuffer, matches, outcomeLabel, type LiveEvent, type LiveOutcome } from "./live";
import { atLeast } from "./roles";
import { formSchema, fromApi, toApi, uiSchema } from "./schemaForm";
import { snippets } from "./snippets";

const webhookSchema = {
  type: "object",
  required: ["url"],
  properties: {
    url: { type: "string", title: "Url" },
    headers: {
      type: "object",
      default: {},
      additionalProperties: { type: "string", format: "password", writeOnly: true, "x-secret": true },
    },
    signing_secret: {
      anyOf: [{ type: "string", format: "password", "x-secret": true, minLength: 1 }, { type: "null" }],
      default: null,
      title: "Signing Secret",
    },
  },
};

function event(type: string, body: Record<string, unknown>): LiveEvent {
  return { source_id: "src_1", message_id: "m", type, received_at: "", event: body, routing: [] };
}

function outcome(
  message_id: string,
  integration_id: string,
  kind: LiveOutcome["outcome"],
  at: number,
  attempt: number,
  extra: Partial<LiveOutcome> = {},
): LiveOutcome {
  return { message_id, integration_id, outcome: kind, at, attempt, ...extra };
}

describe("errors in words", () => {
  it("uses the API's message", () => {
    const error = describeError(422, {
      error: { code: "validation_error", message: "config.url: bad", details: [{ field: "config.url", message: "bad" }] },
    });
    expect(error.message).toBe("config.url: bad");
    expect(error.details[0].field).toBe("config.url");
  });
  it("says something useful without a body", () => {
    expect(describeError(403, "<html>").message).toBe("You are not allowed to do this (HTTP 403)");
    expect(describeError(502, undefined).message).toContain("server failed");
  });
});

describe("roles", () => {
  it("are ordered", () => {
    expect(atLeast("editor", "viewer")).toBe(true);
    expect(atLeast("viewer", "editor")).toBe(false);
    expect(atLeast(undefined, "viewer")).toBe(false);
  });
});

describe("generated integration forms", () => {
  it("turn optional secrets into plain password fields", () => {
    const schema = formSchema(webhookSchema);
    const secret = (schema.properties as Record<string, Record<string, unknown>>).signing_secret;
    expect(secret.anyOf).toBeUndefined();
    expect(secret.type).toBe("string");
    expect(secret.default).toBeUndefined();
    const ui = uiSchema(schema, true);
    expect(ui.signing_secret).toMatchObject({ "ui:widget": "password" });
    expect(ui.headers).toMatchObject({ additionalProperties: { "ui:widget": "password" } });
    expect(ui.url).toBeUndefined();
  });
  it("never send a masked secret back and keep stored ones by leaving them out", () => {
    const schema = formSchema(webhookSchema);
    const shown = fromApi({ url: "https://x", signing_secret: "***", headers: { "X-Key": "***" } });
    expect(shown).toEqual({ url: "https://x", signing_secret: undefined, headers: { "X-Key": undefined } });
    expect(toApi(schema, shown)).toEqual({ url: "https://x", headers: { "X-Key": "***" } });
    expect(toApi(schema, { url: "https://x", signing_secret: "whsec_new" })).toEqual({
      url: "https://x",
      signing_secret: "whsec_new",
    });
  });
});

describe("snippets", () => {
  it("carry the write key and the server for every client", () => {
    const all = snippets("https://events.example.com/", "wk_123");
    expect(all.map((s) => s.id)).toEqual(["analytics-js", "python", "node", "curl"]);
    for (const snippet of all) expect(snippet.code).toContain("events.example.com");
    expect(all.find((s) => s.id === "curl")?.code).toContain(btoa("wk_123:"));
    expect(all.find((s) => s.id === "python")?.code).toContain('analytics.write_key = "wk_123"');
  });
});

describe("live debugger buffer", () => {
  it("samples rather than falls behind, counting what it drops", () => {
    const buffer = new LiveBuffer(5, 3);
    const shown = [0, 1, 2, 3, 4].map((i) => buffer.add(event("track", { n: i }), 100));
    expect(shown).toEqual([true, true, true, false, false]);
    expect(buffer.sampledOut).toBe(2);
    expect(buffer.add(event("track", {}), 1200)).toBe(true); // a new second
    for (let i = 0; i < 10; i++) buffer.add(event("track", {}), 2200 + i * 400);
    expect(buffer.items.length).toBe(5); // keeps the newest only
  });
  it("counts arrivals while paused", () => {
    const buffer = new LiveBuffer();
    buffer.setPaused(true);
    expect(buffer.add(event("track", {}), 0)).toBe(false);
    expect(buffer.whilePaused).toBe(1);
    expect(buffer.items).toEqual([]);
  });
  it("attaches outcomes to their row, the newest per integration", () => {
    const buffer = new LiveBuffer();
    buffer.add({ ...event("track", {}), message_id: "m1" }, 0);
    buffer.add({ ...event("track", {}), message_id: "m2" }, 0);
    const retried = outcome("m1", "int_a", "retried", 10, 1, { reason: "http_error", status: 500 });
    expect(buffer.outcomes([retried, outcome("m1", "int_b", "filtered", 10, 1, { reason: "consent" })])).toBe(true);
    const row = () => buffer.items.find((i) => i.message_id === "m1")!;
    expect(outcomeLabel(row().outcomes!.int_a)).toBe("retried (HTTP 500)");
    expect(outcomeLabel(row().outcomes!.int_b)).toBe("filtered (consent)");
    // A later attempt delivers; an older answer arriving late does not undo it.
    buffer.outcomes([outcome("m1", "int_a", "delivered", 20, 2)]);
    expect(buffer.outcomes([outcome("m1", "int_a", "retried", 10, 1)])).toBe(false);
    expect(row().outcomes!.int_a.outcome).toBe("delivered");
    expect(buffer.items.find((i) => i.message_id === "m2")!.outcomes).toBeUndefined();
  });
  it("keeps outcomes that arrive before their event, within a bound", () => {
    const buffer = new LiveBuffer(200, 20, 2);
    expect(buffer.outcomes([outcome("early", "int_a", "delivered", 1, 1)])).toBe(false);
    buffer.outcomes([outcome("x1", "int_a", "delivered", 1, 1), outcome("x2", "int_a", "delivered", 1, 1)]);
    buffer.add({ ...event("track", {}), message_id: "x2" }, 0);
    expect(buffer.items[0].outcomes?.int_a.outcome).toBe("delivered");
    buffer.add({ ...event("track", {}), message_id: "early" }, 0); // evicted by the bound
    expect(buffer.items[0].outcomes).toBeUndefined();
  });
  it("updates badges while paused without adding rows", () => {
    const buffer = new LiveBuffer();
    buffer.add({ ...event("track", {}), message_id: "m1" }, 0);
    buffer.setPaused(true);
    expect(buffer.outcomes([outcome("m1", "int_a", "delivered", 1, 1)])).toBe(true);
    expect(buffer.items.length).toBe(1);
  });
  it("filters by type, event name and user", () => {
    const order = event("track", { event: "Order Completed", userId: "u-42" });
    expect(matches(order, { type: "", event: "order", user: "" })).toBe(true);
    expect(matches(order, { type: "identify", event: "", user: "" })).toBe(false);
    expect(matches(order, { type: "", event: "", user: "u-4" })).toBe(true);
    expect(matches(order, { type: "", event: "", user: "someone" })).toBe(false);
  });
});
