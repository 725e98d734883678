// The live debugger: a source's events as they are accepted (Server-Sent Events), with each
// integration's routing decision and, as workers settle them, its delivery outcomes. Pause,
// filter, raw JSON; it samples rather than falls behind (live.ts says how).

import { useEffect, useReducer, useRef, useState } from "react";

import { get, refreshSession } from "../api";
import { LiveBuffer, matches, outcomeLabel, type LiveFilter, type LiveOutcome } from "../live";
import type { Page, Source } from "../types";
import { ErrorBox, useLoad } from "../ui";

const TYPES = ["", "track", "identify", "page", "screen", "group", "alias"];

export function Live({ sourceId }: { sourceId?: string }) {
  const sources = useLoad(() => get<Page<Source>>("/v1/admin/sources?limit=100"), []);
  const chosen = sourceId ?? sources.data?.data[0]?.id;
  const buffer = useRef(new LiveBuffer());
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  const [state, setState] = useState("connecting");
  const [filter, setFilter] = useState<LiveFilter>({ type: "", event: "", user: "" });
  const [selectedId, setSelected] = useState<string | null>(null);

  useEffect(() => {
    if (!chosen) return;
    buffer.current.clear();
    let source: EventSource | null = null;
    let closed = false;
    let frame = 0;
    const schedule = () => {
      // Draw at most once per animation frame however fast events come.
      if (!frame) frame = window.requestAnimationFrame(() => ((frame = 0), redraw()));
    };
    const connect = () => {
      source = new EventSource(`/v1/admin/sources/${chosen}/live`);
      source.addEventListener("ready", () => setState("live"));
      source.addEventListener("event", (e) => {
        if (buffer.current.add(JSON.parse((e as MessageEvent).data), Date.now())) schedule();
        else schedule();
      });
      source.addEventListener("outcomes", (e) => {
        const data = JSON.parse((e as MessageEvent).data) as { outcomes: LiveOutcome[] };
        if (buffer.current.outcomes(data.outcomes)) schedule();
      });
      source.addEventListener("outcomes_skipped", (e) => {
        buffer.current.outcomesSkipped(JSON.parse((e as MessageEvent).data).count);
        schedule();
      });
      source.addEventListener("skipped", (e) => {
        buffer.current.skipped(JSON.parse((e as MessageEvent).data).count);
        schedule();
      });
      source.onerror = async () => {
        source?.close();
        if (closed) return;
        setState("reconnecting");
        await refreshSession(); // the access cookie may have expired
        if (!closed) window.setTimeout(connect, 1000);
      };
    };
    connect();
    return () => {
      closed = true;
      source?.close();
      if (frame) window.cancelAnimationFrame(frame);
    };
  }, [chosen]);

  const b = buffer.current;
  const shown = b.items.filter((item) => matches(item, filter));
  // The row's newest copy: outcomes keep arriving while its JSON is open.
  const selected = selectedId === null ? null : (b.items.find((i) => i.message_id === selectedId) ?? null);
  const togglePause = () => {
    b.setPaused(!b.paused);
    redraw();
  };
  return (
    <>
      <h1>Live debugger</h1>
      <ErrorBox error={sources.error} />
      <div className="toolbar" role="group" aria-label="Live view controls">
        <label>
          Source
          <select value={chosen ?? ""} onChange={(e) => (window.location.hash = `#/live/${e.target.value}`)}>
            {sources.data?.data.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select value={filter.type} onChange={(e) => setFilter({ ...filter, type: e.target.value })}>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t || "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Event name
          <input value={filter.event} onChange={(e) => setFilter({ ...filter, event: e.target.value })} />
        </label>
        <label>
          User
          <input value={filter.user} onChange={(e) => setFilter({ ...filter, user: e.target.value })} />
        </label>
        <button type="button" onClick={togglePause} aria-pressed={b.paused}>
          {b.paused ? "Resume" : "Pause"}
        </button>
        <button type="button" onClick={() => (b.clear(), redraw())}>
          Clear
        </button>
      </div>
      <p className="muted" aria-live="polite" data-testid="live-state">
        {state === "live" ? "● live" : state} · {b.items.length} shown · sampled out here {b.sampledOut} · skipped by
        the server {b.skippedByServer}
        {b.outcomesSkippedByServer ? ` · outcomes skipped by the server ${b.outcomesSkippedByServer}` : ""}
        {b.paused ? ` · paused (${b.whilePaused} arrived meanwhile)` : ""}
      </p>
      <div className="live">
        <table aria-label="Events">
          <thead>
            <tr>
              <th scope="col">Received</th>
              <th scope="col">Type</th>
              <th scope="col">Event / user</th>
              <th scope="col">Routing and delivery</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((item) => (
              <tr
                key={item.message_id}
                tabIndex={0}
                aria-selected={selectedId === item.message_id}
                onClick={() => setSelected(item.message_id)}
                onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && setSelected(item.message_id)}
                className="live-row"
              >
                <td>{new Date(item.received_at).toLocaleTimeString()}</td>
                <td>{item.type}</td>
                <td>{String(item.event.event ?? item.event.name ?? "")} {String(item.event.userId ?? item.event.anonymousId ?? "")}</td>
                <td>
                  {item.routing.map((r) => {
                    const outcome = item.outcomes?.[r.integration_id];
                    return (
                      <span key={r.integration_id} className="route" data-integration={r.integration_id}>
                        <span className={`badge badge-${r.decision}`} title={r.reason}>
                          {r.name ?? r.integration_id}: {r.decision}
                          {r.reason ? ` (${r.reason})` : ""}
                        </span>
                        {outcome && <OutcomeBadge outcome={outcome} />}
                      </span>
                    );
                  })}
                  {Object.values(item.outcomes ?? {})
                    .filter((o) => !item.routing.some((r) => r.integration_id === o.integration_id))
                    .map((o) => (
                      <span key={o.integration_id} className="route" data-integration={o.integration_id}>
                        {o.name ?? o.integration_id}: <OutcomeBadge outcome={o} />
                      </span>
                    ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {selected && (
          <aside className="card raw" aria-label="Raw event">
            <div className="card-head">
              <h2>Raw JSON</h2>
              <button type="button" className="small" onClick={() => setSelected(null)}>
                Close
              </button>
            </div>
            <pre className="json">{JSON.stringify(selected, null, 2)}</pre>
          </aside>
        )}
      </div>
    </>
  );
}

/** An outcome badge: its words are visible (not colour alone) and its details (attempt, time,
 * the vendor's words) are in the accessible label and the tooltip. */
function OutcomeBadge({ outcome }: { outcome: LiveOutcome }) {
  const label = outcomeLabel(outcome);
  const when = new Date(outcome.at * 1000).toLocaleTimeString();
  const details = `${label}, attempt ${outcome.attempt}, ${when}${outcome.message ? `: ${outcome.message}` : ""}`;
  return (
    <span
      className={`badge badge-outcome badge-${outcome.outcome}`}
      title={details}
      aria-label={`${outcome.name ?? outcome.integration_id} ${details}`}
      data-outcome={outcome.outcome}
    >
      → {label}
    </span>
  );
}
