// Routing rules: an integration's (trigger, filters, transformation; tried on sample events
// with /v1/admin/rules/evaluate before saving) and the organisation's (drop, redact, hash).

import { useEffect, useState } from "react";

import { get, post, put } from "../api";
import { ApiError } from "../errors";
import { atLeast } from "../roles";
import {
  addTemplate,
  describeResult,
  detailInWords,
  formatRules,
  ORG_TEMPLATES,
  parseEvents,
  parseRules,
  RULE_TEMPLATES,
  type RuleResult,
} from "../rules";
import type { Integration, Me } from "../types";
import { Section, useLoad } from "../ui";

const SAMPLES = JSON.stringify(
  [
    { type: "track", event: "Order Completed", userId: "user-42", properties: { revenue: 42, currency: "EUR" } },
    { type: "track", event: "Product Viewed", userId: "user-42", properties: { sku: "A-1" } },
  ],
  null,
  2,
);

/** An error in words; a 422 lists each field and position ("In filter 2, its condition at character 7: ..."). */
function RulesError({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const details = error instanceof ApiError ? error.details : [];
  return (
    <div className="error" role="alert" data-testid="rules-error">
      <strong>{details.length ? "The rules are not valid." : message}</strong>
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li key={d.field + d.message}>{detailInWords(d)}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Templates({ templates, onPick }: { templates: { label: string }[]; onPick: (index: number) => void }) {
  return (
    <div className="actions" role="group" aria-label="Templates">
      <span className="muted">Add an example:</span>
      {templates.map((t, i) => (
        <button key={t.label} type="button" className="small" onClick={() => onPick(i)}>
          {t.label}
        </button>
      ))}
    </div>
  );
}

/** Sample events and what rules made of them, shared by both pages: `run` posts the rules and
 * the samples to an evaluate endpoint (nothing saved there). */
function useTry(path: string, setError: (error: unknown) => void) {
  const [samples, setSamples] = useState(SAMPLES);
  const [results, setResults] = useState<RuleResult[] | null>(null);
  const run = async (text: string) => {
    setError(null);
    setResults(null);
    const rules = parseRules(text);
    if (!rules.ok) return setError(new Error(rules.message));
    const events = parseEvents(samples);
    if (!events.ok) return setError(new Error(events.message));
    try {
      const answer = await post<{ results: RuleResult[] }>(path, { rules: rules.value ?? {}, events: events.value });
      setResults(answer.results);
    } catch (err) {
      setError(err);
    }
  };
  return { samples, setSamples, results, run };
}

function SampleEvents({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  return (
    <label>
      Sample events (one event or a list)
      <textarea rows={8} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} data-testid="rules-samples" />
    </label>
  );
}

function TryResults({ results }: { results: RuleResult[] | null }) {
  if (!results) return null;
  return (
    <ol className="rule-results" data-testid="rules-results">
      {results.map((r) => (
        <li key={r.index}>
          <span className={`badge badge-${r.delivered ? "delivered" : "filtered"}`}>{describeResult(r)}</span>
          {r.events && <pre className="json">{JSON.stringify(r.events.length === 1 ? r.events[0] : r.events, null, 2)}</pre>}
        </li>
      ))}
    </ol>
  );
}

/** The integration page's rules section. */
export function IntegrationRules({ me, integration, onSaved }: { me: Me; integration: Integration; onSaved: () => void }) {
  const stored = formatRules(integration.config?.rules);
  const canEdit = atLeast(me.role, "editor");
  const [text, setText] = useState(stored);
  const [dirty, setDirty] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const trial = useTry("/v1/admin/rules/evaluate", setError);
  const [saved, setSaved] = useState(false);
  // The page reloads the integration every few seconds: follow it unless the user is editing.
  useEffect(() => {
    if (!dirty) setText(stored);
  }, [stored, dirty]);

  const edit = (value: string) => {
    setText(value);
    setDirty(true);
    setSaved(false);
  };
  const pick = (index: number) => {
    const parsed = parseRules(text);
    if (!parsed.ok) return setError(new Error(parsed.message));
    setError(null);
    edit(formatRules(addTemplate(parsed.value, RULE_TEMPLATES[index].part)));
  };
  const save = async () => {
    setError(null);
    const rules = parseRules(text);
    if (!rules.ok) return setError(new Error(rules.message));
    // The whole config goes back: stored secrets come as "***", which keeps them; no rules
    // (an empty editor) removes them.
    const config: Record<string, unknown> = { ...(integration.config ?? {}) };
    delete config.rules;
    if (rules.value && Object.keys(rules.value).length) config.rules = rules.value;
    try {
      await put(`/v1/admin/integrations/${integration.id}`, { config });
      setDirty(false);
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Section title="Rules">
      <p className="muted">
        A trigger (only matching events are delivered), filters and a transformation, applied before the vendor request. See
        the README's "Routing rules".
      </p>
      <RulesError error={error} />
      {canEdit ? (
        <>
          <Templates templates={RULE_TEMPLATES} onPick={pick} />
          <label>
            Rules (JSON; empty for none)
            <textarea rows={12} value={text} onChange={(e) => edit(e.target.value)} spellCheck={false} data-testid="rules-editor" />
          </label>
        </>
      ) : (
        <pre className="json" data-testid="rules-view">
          {stored || "No rules: every event is delivered."}
        </pre>
      )}
      {canEdit && (
        <>
          <SampleEvents value={trial.samples} onChange={trial.setSamples} />
          <div className="actions">
            <button type="button" onClick={() => trial.run(text)}>
              Try
            </button>
            <button type="button" onClick={save} disabled={!dirty}>
              Save rules
            </button>
            {saved && <span role="status">Saved.</span>}
          </div>
        </>
      )}
      <TryResults results={trial.results} />
    </Section>
  );
}

interface OrgRulesBody {
  drop: unknown[];
  redact: string[];
  hash: string[];
}

/** The organisation's rules page: drop, redact, hash (admin edits). */
export function OrganizationRules({ me }: { me: Me }) {
  const { data, error: loadError, reload } = useLoad(() => get<OrgRulesBody>("/v1/admin/organization/rules"), []);
  const canEdit = atLeast(me.role, "admin");
  const [text, setText] = useState("");
  const canTry = atLeast(me.role, "editor");
  const [error, setError] = useState<unknown>(null);
  const trial = useTry("/v1/admin/organization/rules/evaluate", setError);
  const [saved, setSaved] = useState(false);
  const [dirty, setDirty] = useState(false);
  // What arrives from the server never overwrites what the user is typing.
  useEffect(() => {
    if (data && !dirty) setText(formatRules(data));
  }, [data, dirty]);

  const pick = (index: number) => {
    const parsed = parseRules(text);
    if (!parsed.ok) return setError(new Error(parsed.message));
    setError(null);
    setSaved(false);
    setDirty(true);
    setText(formatRules(addTemplate(parsed.value, ORG_TEMPLATES[index].part)));
  };
  const save = async () => {
    setError(null);
    setSaved(false);
    const rules = parseRules(text);
    if (!rules.ok) return setError(new Error(rules.message));
    try {
      await put("/v1/admin/organization/rules", rules.value ?? {});
      setSaved(true);
      setDirty(false);
      reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <h1>Organisation rules</h1>
      <RulesError error={loadError} />
      <Section title="Applied at ingest to every event">
        <p className="muted">
          <code>drop</code>: conditions (FQL or structured); a matching event is never stored nor delivered.{" "}
          <code>redact</code>: paths removed. <code>hash</code>: paths replaced by their SHA-256. Applied before any
          integration's rules.
        </p>
        <RulesError error={error} />
        {canEdit ? (
          <>
            <Templates templates={ORG_TEMPLATES} onPick={pick} />
            <label>
              Rules (JSON)
              <textarea
                rows={12}
                value={text}
                onChange={(e) => {
                  setText(e.target.value);
                  setSaved(false);
                  setDirty(true);
                }}
                spellCheck={false}
                data-testid="org-rules-editor"
              />
            </label>
          </>
        ) : (
          <pre className="json" data-testid="rules-view">
            {data ? formatRules(data) : ""}
          </pre>
        )}
        {canTry && (
          <>
            <SampleEvents value={trial.samples} onChange={trial.setSamples} />
            <div className="actions">
              <button type="button" onClick={() => trial.run(text)}>
                Try
              </button>
              {canEdit && (
                <button type="button" onClick={save}>
                  Save rules
                </button>
              )}
              {saved && <span role="status">Saved.</span>}
            </div>
          </>
        )}
        <TryResults results={trial.results} />
      </Section>
    </>
  );
}
