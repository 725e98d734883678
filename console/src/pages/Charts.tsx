// Delivery over time (recharts): outcomes per bucket, and time to delivery.

import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

import type { Metrics } from "../types";

const SERIES: [string, string][] = [
  ["successes", "#1a7f37"],
  ["retried", "#bf8700"],
  ["discarded", "#cf222e"],
  ["filtered", "#8250df"],
  ["expired", "#57606a"],
];

function label(iso: unknown): string {
  return typeof iso === "string" ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

export function totals(metrics: Metrics): Record<string, number> {
  return Object.fromEntries(metrics.metrics.map((m) => [m.metricName, m.total]));
}

export function latency(metrics: Metrics): { p50: number | null; p95: number | null } {
  const metric = metrics.metrics.find((m) => m.metricName === "time_to_success");
  const value = (name: string) => metric?.breakdown?.find((b) => b.metricName === name)?.value ?? null;
  return { p50: value("time_to_success_p50"), p95: value("time_to_success_p95") };
}

export function DeliveryCharts({ metrics }: { metrics: Metrics }) {
  const count = totals(metrics);
  const { p50, p95 } = latency(metrics);
  return (
    <>
      <dl className="stats" aria-label="Totals over the range">
        {SERIES.map(([name]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd data-testid={`total-${name}`}>{count[name] ?? 0}</dd>
          </div>
        ))}
        <div>
          <dt>pending</dt>
          <dd>{metrics.pending ?? "?"}</dd>
        </div>
        <div>
          <dt>time to delivery p50 / p95</dt>
          <dd>
            {p50 === null ? "–" : `${Math.round(p50)} ms`} / {p95 === null ? "–" : `${Math.round(p95)} ms`}
          </dd>
        </div>
      </dl>
      <figure className="chart" aria-label="Events per minute by outcome">
        <ResponsiveContainer width="100%" height={220}>
          <LineChart data={metrics.series}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="start" tickFormatter={label} />
            <YAxis allowDecimals={false} />
            <Tooltip labelFormatter={label} />
            <Legend />
            {SERIES.map(([name, colour]) => (
              <Line key={name} type="monotone" dataKey={name} stroke={colour} dot={{ r: 2 }} isAnimationActive={false} />
            ))}
          </LineChart>
        </ResponsiveContainer>
        <figcaption>Events by outcome</figcaption>
      </figure>
      <figure className="chart" aria-label="Time to delivery, p50 and p95">
        <ResponsiveContainer width="100%" height={160}>
          <LineChart data={metrics.series}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="start" tickFormatter={label} />
            <YAxis unit=" ms" />
            <Tooltip labelFormatter={label} />
            <Legend />
            <Line type="monotone" dataKey="time_to_success_p50" name="p50 ms" stroke="#1a7f37" dot={{ r: 2 }} isAnimationActive={false} />
            <Line type="monotone" dataKey="time_to_success_p95" name="p95 ms" stroke="#0969da" dot={{ r: 2 }} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
        <figcaption>Time to delivery (p50, p95)</figcaption>
      </figure>
    </>
  );
}
