// The admin API from the browser: cookies carry the session (httpOnly, out of this script's
// reach); every request that changes something carries the CSRF token in a header. An expired
// access token is refreshed once, transparently.

import { ApiError, describeError, networkError } from "./errors";

const SAFE = new Set(["GET", "HEAD"]);
let loggedOut: () => void = () => undefined;

export function onLoggedOut(callback: () => void): void {
  loggedOut = callback;
}

export function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)er_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method)) headers["X-CSRF-Token"] = csrfToken();
  if (path === "/v1/admin/auth/login") headers["X-EventRelay-Session"] = "cookie";
  try {
    return await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw networkError();
  }
}

async function parse<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) throw describeError(response.status, data);
  return data as T;
}

let refreshing: Promise<boolean> | null = null;

export function refreshSession(): Promise<boolean> {
  refreshing ??= send("POST", "/v1/admin/auth/refresh")
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response = await send(method, path, body);
  if (response.status === 401 && !path.startsWith("/v1/admin/auth/")) {
    if (await refreshSession()) {
      response = await send(method, path, body);
    }
    if (response.status === 401) loggedOut();
  }
  return parse<T>(response);
}

export const get = <T>(path: string) => api<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body ?? {});
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = (path: string) => api<void>("DELETE", path);

export { ApiError };
