// Create and edit an integration: the config form is generated from the catalog's JSON Schema
// (react-jsonschema-form); secrets are write-only (empty keeps the stored value).

import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";
import { useMemo, useState } from "react";

import { get, post, put } from "../api";
import { ApiError } from "../errors";
import { atLeast } from "../roles";
import { splitRules, withRules } from "../rules";
import { formSchema, fromApi, toApi, uiSchema } from "../schemaForm";
import type { CatalogEntry, Integration, Me, Organization, Page, Source } from "../types";
import { ErrorBox, useLoad } from "../ui";

interface Loaded {
  catalog: CatalogEntry[];
  sources: Source[];
  org: Organization;
  existing?: Integration;
}

export function IntegrationEdit({ me, id }: { me: Me; id?: string }) {
  const { data, error } = useLoad<Loaded>(async () => {
    const [catalog, sources, org, existing] = await Promise.all([
      get<{ data: CatalogEntry[] }>("/v1/admin/catalog"),
      get<Page<Source>>("/v1/admin/sources?limit=100"),
      get<Organization>("/v1/admin/organization"),
      id ? get<Integration>(`/v1/admin/integrations/${id}`) : Promise.resolve(undefined),
    ]);
    return { catalog: catalog.data, sources: sources.data, org, existing };
  }, [id]);
  if (!atLeast(me.role, "editor")) return <p>Your role ({me.role}) cannot change integrations.</p>;
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p className="loading">Loading…</p>;
  return <Editor loaded={data} />;
}

function Editor({ loaded }: { loaded: Loaded }) {
  const { catalog, sources, org, existing } = loaded;
  const [type, setType] = useState(existing?.type ?? "webhook");
  const [sourceId, setSourceId] = useState(existing?.source_id ?? sources[0]?.id ?? "");
  const [name, setName] = useState(existing?.name ?? "");
  const [enabled, setEnabled] = useState(existing?.enabled ?? true);
  const entry = catalog.find((c) => c.type === type);
  const [consent, setConsent] = useState<string[]>(
    existing?.consent_categories ?? entry?.default_consent_categories ?? [],
  );
  // The rules are edited on the integration's page; this form keeps them as they are.
  const [vendorConfig, storedRules] = splitRules(existing?.config);
  const [config, setConfig] = useState<Record<string, unknown>>(existing?.config ? fromApi(vendorConfig) : {});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const schema = useMemo(() => (entry ? formSchema(entry.config_schema) : {}), [entry]);
  const ui = useMemo(() => uiSchema(schema, !!existing), [schema, existing]);
  const categories = Array.from(new Set([...org.consent_categories, ...consent]));

  const save = async (formData: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    const body = { name, enabled, consent_categories: consent, config: withRules(toApi(schema, formData), storedRules) };
    try {
      const saved = existing
        ? await put<Integration>(`/v1/admin/integrations/${existing.id}`, body)
        : await post<Integration>("/v1/admin/integrations", { ...body, type, source_id: sourceId });
      window.location.hash = `#/integrations/${saved.id}`;
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldErrors = error instanceof ApiError ? error.details : [];

  return (
    <>
      <h1>{existing ? `Edit ${existing.name}` : "New integration"}</h1>
      <div className="card">
        <div className="grid2">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
          </label>
          <label>
            Source
            <select value={sourceId} onChange={(e) => setSourceId(e.target.value)} disabled={!!existing}>
              {sources.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Type
            <select
              value={type}
              disabled={!!existing}
              onChange={(e) => {
                setType(e.target.value);
                setConfig({});
                setConsent(catalog.find((c) => c.type === e.target.value)?.default_consent_categories ?? []);
              }}
            >
              {catalog.map((c) => (
                <option key={c.type} value={c.type}>
                  {c.title} ({c.category})
                </option>
              ))}
            </select>
          </label>
          <label className="check">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
            Enabled
          </label>
        </div>
        <fieldset>
          <legend>Consent categories the events must have</legend>
          {categories.length === 0 && <span className="muted">none defined for the organisation</span>}
          {categories.map((c) => (
            <label key={c} className="check">
              <input
                type="checkbox"
                checked={consent.includes(c)}
                onChange={(e) => setConsent(e.target.checked ? [...consent, c] : consent.filter((x) => x !== c))}
              />
              {c}
            </label>
          ))}
        </fieldset>
        {entry && (
          <p className="muted">
            {entry.title}: <a href={entry.docs_url}>vendor documentation</a>
          </p>
        )}
        <ErrorBox error={error} />
        {fieldErrors.length === 1 && (
          <p className="error-field">
            <code>{fieldErrors[0].field}</code>: {fieldErrors[0].message}
          </p>
        )}
        <Form
          schema={schema}
          uiSchema={{ ...ui, "ui:submitButtonOptions": { submitText: busy ? "Saving…" : existing ? "Save" : "Create integration" } }}
          formData={config}
          validator={validator}
          onChange={(e) => setConfig(e.formData as Record<string, unknown>)}
          onSubmit={(e) => save(e.formData as Record<string, unknown>)}
          showErrorList="top"
          noHtml5Validate
        />
      </div>
    </>
  );
}
