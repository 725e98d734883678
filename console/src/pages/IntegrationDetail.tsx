// One integration: status and last error, pause/resume, delivery charts, recent failures with
// the request sent and the vendor's answer, routing rules, preview and a test event.

import { useEffect, useState } from "react";

import { get, post } from "../api";
import { atLeast } from "../roles";
import type { Failure, Integration, Me, Metrics, Page } from "../types";
import { Badge, ErrorBox, Section, useLoad, when } from "../ui";
import { DeliveryCharts } from "./Charts";
import { IntegrationRules } from "./Rules";

const SAMPLE = JSON.stringify(
  { type: "track", event: "Order Completed", userId: "user-42", properties: { revenue: 42, currency: "EUR" } },
  null,
  2,
);

const RANGES = [
  { label: "Last 30 minutes", minutes: 30, granularity: "minute" },
  // Within the server's limits per granularity (4 hours of minutes, 7 days of hours).
  { label: "Last 3 hours", minutes: 180, granularity: "minute" },
  { label: "Last 24 hours", minutes: 1440, granularity: "hour" },
  { label: "Last 6 days", minutes: 6 * 1440, granularity: "hour" },
];

function Json({ value }: { value: unknown }) {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function IntegrationDetail({ me, id }: { me: Me; id: string }) {
  const integration = useLoad(() => get<Integration>(`/v1/admin/integrations/${id}`), [id]);
  const [range, setRange] = useState(RANGES[0]);
  const metrics = useLoad(() => {
    const start = new Date(Date.now() - range.minutes * 60_000).toISOString();
    return get<Metrics>(`/v1/admin/integrations/${id}/metrics?granularity=${range.granularity}&start=${encodeURIComponent(start)}`);
  }, [id, range]);
  const failures = useLoad(() => get<Page<Failure>>(`/v1/admin/integrations/${id}/failures?limit=10`), [id]);
  const [actionError, setActionError] = useState<unknown>(null);
  const [testResult, setTestResult] = useState<unknown>(null);
  const [previewInput, setPreviewInput] = useState(SAMPLE);
  const [preview, setPreview] = useState<unknown>(null);
  const canEdit = atLeast(me.role, "editor");

  // Counters are written every second: follow them while the page is open.
  useEffect(() => {
    const timer = window.setInterval(() => {
      metrics.reload();
      failures.reload();
      integration.reload();
    }, 3000);
    return () => window.clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);

  const act = async (action: () => Promise<unknown>, after?: (value: unknown) => void) => {
    setActionError(null);
    try {
      const value = await action();
      after?.(value);
      integration.reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const runPreview = () =>
    act(async () => {
      let message: unknown;
      try {
        message = JSON.parse(previewInput);
      } catch {
        throw new Error("The event is not valid JSON.");
      }
      return post(`/v1/admin/integrations/${id}/preview`, { message });
    }, setPreview);

  const i = integration.data;
  if (integration.error) return <ErrorBox error={integration.error} />;
  if (!i) return <p className="loading">Loading…</p>;
  return (
    <>
      <h1>
        {i.name} <Badge status={i.status} />
      </h1>
      <p className="muted">
        {i.type} · <code>{i.id}</code> · last delivery {when(i.last_delivery_at)}
      </p>
      {i.last_error_message && (
        <div className="error" role="status" data-testid="last-error">
          <strong>Last error</strong> ({when(i.last_error_at)}): {i.last_error_message}
        </div>
      )}
      <ErrorBox error={actionError} />
      {canEdit && (
        <div className="actions">
          <a className="button" href={`#/integrations/${i.id}/edit`}>
            Edit
          </a>
          {i.status === "active" ? (
            <button type="button" onClick={() => act(() => post(`/v1/admin/integrations/${id}/status`, { status: "paused" }))}>
              Pause
            </button>
          ) : (
            <button type="button" onClick={() => act(() => post(`/v1/admin/integrations/${id}/status`, { status: "active" }))}>
              {i.status === "error" ? "Resume from error" : "Resume"}
            </button>
          )}
          <button type="button" onClick={() => act(() => post(`/v1/admin/integrations/${id}/test`), setTestResult)}>
            Send test event
          </button>
        </div>
      )}
      {testResult !== null && (
        <Section title="Test event answer">
          <Json value={testResult} />
        </Section>
      )}
      <Section
        title="Delivery"
        actions={
          <label className="inline">
            Range
            <select value={range.label} onChange={(e) => setRange(RANGES.find((r) => r.label === e.target.value) ?? RANGES[0])}>
              {RANGES.map((r) => (
                <option key={r.label}>{r.label}</option>
              ))}
            </select>
          </label>
        }
      >
        <ErrorBox error={metrics.error} />
        {metrics.data && <DeliveryCharts metrics={metrics.data} />}
      </Section>
      <Section title="Recent failures">
        <ErrorBox error={failures.error} />
        {failures.data?.data.length === 0 && <p>No failures.</p>}
        {failures.data?.data.map((f) => (
          <details key={f.id} className="failure">
            <summary>
              {when(f.time)} · {f.outcome} {f.reason ? `(${f.reason})` : ""} · HTTP {f.status_code ?? "–"} ·{" "}
              <span className="clip">{f.error}</span>
            </summary>
            <div className="grid2">
              <div>
                <h3>Request sent</h3>
                <Json value={f.request} />
              </div>
              <div>
                <h3>Vendor's answer</h3>
                <Json value={f.response} />
              </div>
            </div>
          </details>
        ))}
      </Section>
      <IntegrationRules me={me} integration={i} onSaved={integration.reload} />
      <Section title="Preview">
        <label>
          An event (Segment spec)
          <textarea rows={8} value={previewInput} onChange={(e) => setPreviewInput(e.target.value)} spellCheck={false} />
        </label>
        <button type="button" onClick={runPreview}>
          Show the vendor request
        </button>
        {preview !== null && <Json value={preview} />}
      </Section>
    </>
  );
}
