import { get } from "../api";
import { atLeast } from "../roles";
import type { Integration, Me, Page, Source } from "../types";
import { Badge, ErrorBox, useLoad } from "../ui";

export function Integrations({ me }: { me: Me }) {
  const { data, error } = useLoad(
    () =>
      Promise.all([
        get<Page<Integration>>("/v1/admin/integrations?limit=100"),
        get<Page<Source>>("/v1/admin/sources?limit=100"),
      ]),
    [],
  );
  const sources = new Map((data?.[1].data ?? []).map((s) => [s.id, s.name]));
  return (
    <>
      <h1>Integrations</h1>
      <ErrorBox error={error} />
      {atLeast(me.role, "editor") && (
        <p>
          <a className="button" href="#/integrations/new">
            New integration
          </a>
        </p>
      )}
      {data && data[0].data.length === 0 && <p>No integrations yet.</p>}
      {data && data[0].data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Source</th>
              <th scope="col">Status</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {data[0].data.map((i) => (
              <tr key={i.id}>
                <td>
                  <a href={`#/integrations/${i.id}`}>{i.name}</a>
                </td>
                <td>{i.type}</td>
                <td>{sources.get(i.source_id) ?? i.source_id}</td>
                <td>
                  <Badge status={i.status} />
                </td>
                <td className="clip">{i.last_error_message ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
