// The catalog's JSON Schema made friendly for a generated form (react-jsonschema-form), and the
// form's data made right for the API: secrets are write-only.

type Schema = Record<string, unknown>;

/** `anyOf: [X, {type: null}]` (pydantic's optional field) becomes X: the form leaves it empty. */
export function formSchema(schema: Schema): Schema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== "object") return node;
    const object = { ...(node as Schema) };
    const anyOf = object.anyOf as Schema[] | undefined;
    if (Array.isArray(anyOf)) {
      const rest = anyOf.filter((option) => option.type !== "null");
      if (rest.length === 1 && rest.length < anyOf.length) {
        delete object.anyOf;
        if (object.default === null) delete object.default;
        Object.assign(object, rest[0]);
      }
    }
    for (const [key, value] of Object.entries(object)) object[key] = walk(value);
    return object;
  };
  const result = walk(schema) as Schema;
  delete result.title; // the model's name ("WebhookSettings"): the page says what it is
  return result;
}

function isSecret(node: unknown): boolean {
  return !!node && typeof node === "object" && (node as Schema)["x-secret"] === true;
}

/** Password widgets for secret fields; on edit, a placeholder says a value is stored. */
export function uiSchema(schema: Schema, editing: boolean): Schema {
  const ui: Schema = {};
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const secretUi = {
    "ui:widget": "password",
    "ui:placeholder": editing ? "stored: leave empty to keep it" : "",
  };
  for (const [name, property] of Object.entries(properties)) {
    if (isSecret(property)) ui[name] = secretUi;
    else if (isSecret(property.additionalProperties)) {
      ui[name] = { additionalProperties: secretUi };
    }
  }
  return ui;
}

/** Config as the form shows it: "***" (a stored secret) becomes empty. */
export function fromApi(config: Record<string, unknown>): Record<string, unknown> {
  const walk = (value: unknown): unknown => {
    if (value === "***") return undefined;
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return walk(config) as Record<string, unknown>;
}

/** Config for the API: empty secrets are left out (the server keeps the stored value). */
export function toApi(schema: Schema, data: Record<string, unknown>): Record<string, unknown> {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(data)) {
    const property = properties[name];
    const empty = value === undefined || value === null || value === "";
    if (empty && (isSecret(property) || !(name in properties))) continue;
    if (empty && property && property.default === undefined && property.type !== "boolean") {
      continue;
    }
    if (property && isSecret(property.additionalProperties) && value && typeof value === "object") {
      out[name] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, v === "" || v === undefined ? "***" : v]),
      );
      continue;
    }
    out[name] = value;
  }
  return out;
}
