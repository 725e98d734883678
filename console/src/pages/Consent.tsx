import { useState, type FormEvent } from "react";

import { get, put } from "../api";
import { atLeast } from "../roles";
import type { Me, Organization } from "../types";
import { ErrorBox, Section, useLoad } from "../ui";

export function Consent({ me }: { me: Me }) {
  const { data, error, reload } = useLoad(() => get<Organization>("/v1/admin/organization"), []);
  const [added, setAdded] = useState("");
  const [saveError, setSaveError] = useState<unknown>(null);
  const save = async (categories: string[]) => {
    try {
      await put("/v1/admin/organization", { consent_categories: categories });
      setSaveError(null);
      reload();
    } catch (err) {
      setSaveError(err);
    }
  };
  const add = (e: FormEvent) => {
    e.preventDefault();
    if (data) save([...data.consent_categories, added.trim()]).then(() => setAdded(""));
  };
  const canEdit = atLeast(me.role, "admin");
  return (
    <>
      <h1>Consent categories</h1>
      <ErrorBox error={error} />
      <ErrorBox error={saveError} />
      <Section title={data?.name ?? "Organisation"}>
        <p className="muted">Integrations may require these categories; events without them are filtered (reason: consent).</p>
        <ul className="chips">
          {data?.consent_categories.map((c) => (
            <li key={c}>
              {c}
              {canEdit && (
                <button type="button" className="small" aria-label={`Remove ${c}`} onClick={() => save(data.consent_categories.filter((x) => x !== c))}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
        {canEdit && (
          <form className="inline" onSubmit={add}>
            <label>
              New category
              <input value={added} onChange={(e) => setAdded(e.target.value)} required />
            </label>
            <button type="submit">Add</button>
          </form>
        )}
      </Section>
    </>
  );
}
