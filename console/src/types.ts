// The admin API's objects, as far as the console reads them.

export type Role = "viewer" | "editor" | "admin" | "owner";

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
  has_more: boolean;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  status: "invited" | "active" | "deactivated";
  created_at: string;
  last_login_at: string | null;
}

export interface Me {
  kind: "user" | "token";
  id: string;
  name: string;
  role: Role;
  user: User | null;
}

export interface Source {
  id: string;
  name: string;
  write_key: string | null;
  consent_default: string;
  allowed_origins: string[];
  created_at: string;
}

export interface Integration {
  id: string;
  source_id: string;
  type: string;
  name: string;
  enabled: boolean;
  status: "active" | "paused" | "error";
  last_error_message: string | null;
  last_error_at: string | null;
  filtered_last_hour: Record<string, number>;
  config?: Record<string, unknown>;
  consent_categories?: string[];
  last_delivery_at?: string | null;
}

export interface CatalogEntry {
  type: string;
  title: string;
  category: string;
  docs_url: string;
  delivery: string;
  default_consent_categories: string[];
  secret_fields: string[];
  config_schema: Record<string, unknown>;
}

export interface Metric {
  metricName: string;
  unit?: string | null;
  total: number;
  breakdown?: { metricName: string; value: number | null }[] | null;
}

export interface Metrics {
  pending: number | null;
  metrics: Metric[];
  series: Record<string, number | string | null>[];
}

export interface Failure {
  id: string;
  time: string;
  outcome: string;
  reason: string | null;
  status_code: number | null;
  error: string | null;
  attempt: number;
  event_count: number;
  request: Record<string, unknown> | null;
  response: Record<string, unknown> | null;
}

export interface AuditEntry {
  id: string;
  action: string;
  actor: { token_id: string | null; user_id?: string | null; name: string };
  resource_type: string;
  resource_id: string;
  changes: Record<string, unknown>;
  ip: string | null;
  timestamp: string;
}

export interface Token {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface Organization {
  id: string;
  name: string;
  consent_categories: string[];
}
