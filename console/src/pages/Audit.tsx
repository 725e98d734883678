import { useState } from "react";

import { get } from "../api";
import type { AuditEntry, Page } from "../types";
import { ErrorBox, useLoad, when } from "../ui";

export function Audit() {
  const [cursor, setCursor] = useState<string | null>(null);
  const [older, setOlder] = useState<AuditEntry[]>([]);
  const first = useLoad(() => get<Page<AuditEntry>>("/v1/admin/audit-log?limit=50"), []);
  const next = cursor ?? first.data?.next_cursor ?? null;
  const [error, setError] = useState<unknown>(null);
  const more = async () => {
    try {
      const page = await get<Page<AuditEntry>>(`/v1/admin/audit-log?limit=50&cursor=${encodeURIComponent(next ?? "")}`);
      setOlder([...older, ...page.data]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    }
  };
  const rows = [...(first.data?.data ?? []), ...older];
  return (
    <>
      <h1>Audit log</h1>
      <ErrorBox error={first.error ?? error} />
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Resource</th>
            <th scope="col">Changes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.id}>
              <td>{when(e.timestamp)}</td>
              <td>
                {e.actor.name} <span className="muted">{e.actor.user_id ? "user" : e.actor.token_id ? "token" : ""}</span>
              </td>
              <td>{e.action}</td>
              <td>
                <code>{e.resource_id}</code>
              </td>
              <td className="clip">{Object.keys(e.changes).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next && (first.data?.has_more || cursor) && (
        <button type="button" onClick={more}>
          Older entries
        </button>
      )}
    </>
  );
}
