import { useState, type FormEvent } from "react";

import { get, post } from "../api";
import { atLeast } from "../roles";
import { snippets } from "../snippets";
import type { Me, Page, Source } from "../types";
import { CopyButton, ErrorBox, Section, useLoad } from "../ui";

function SourceCard({ source }: { source: Source }) {
  const [tab, setTab] = useState("analytics-js");
  const all = source.write_key ? snippets(window.location.origin, source.write_key) : [];
  const current = all.find((s) => s.id === tab) ?? all[0];
  return (
    <Section
      title={source.name}
      actions={
        <a className="button small" href={`#/live/${source.id}`}>
          Live events
        </a>
      }
    >
      <p className="muted">
        <code>{source.id}</code>
      </p>
      {source.write_key ? (
        <>
          <div className="row">
            <span>Write key</span>
            <code className="key" data-testid="write-key">
              {source.write_key}
            </code>
            <CopyButton text={source.write_key} label="Copy write key" />
          </div>
          <div role="tablist" aria-label={`Snippets for ${source.name}`} className="tabs">
            {all.map((s) => (
              <button key={s.id} type="button" role="tab" aria-selected={s.id === current.id} onClick={() => setTab(s.id)}>
                {s.label}
              </button>
            ))}
          </div>
          <div role="tabpanel" className="snippet">
            <pre>{current.code}</pre>
            <CopyButton text={current.code} label="Copy snippet" />
          </div>
        </>
      ) : (
        <p>No active write key.</p>
      )}
    </Section>
  );
}

export function Sources({ me }: { me: Me }) {
  const { data, error, reload } = useLoad(() => get<Page<Source>>("/v1/admin/sources?limit=100"), []);
  const [name, setName] = useState("");
  const [createError, setCreateError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await post("/v1/admin/sources", { name });
      setName("");
      setCreateError(null);
      reload();
    } catch (err) {
      setCreateError(err);
    }
  };
  return (
    <>
      <h1>Sources</h1>
      <ErrorBox error={error} />
      {atLeast(me.role, "editor") && (
        <form className="inline card" onSubmit={create} aria-label="New source">
          <label>
            New source name
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
          </label>
          <button type="submit">Create source</button>
          <ErrorBox error={createError} />
        </form>
      )}
      {data?.data.length === 0 && <p>No sources yet.</p>}
      {data?.data.map((s) => <SourceCard key={s.id} source={s} />)}
    </>
  );
}
