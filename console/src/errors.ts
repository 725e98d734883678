// API errors in words: the admin API answers {"error": {"code", "message", "details"}}.

export interface ErrorDetail {
  field: string;
  message: string;
  /** 1-based, inside an expression or a function's source (rules). */
  position?: number;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

const BY_STATUS: Record<number, string> = {
  400: "The request was not understood",
  401: "You are not logged in (or your session ended)",
  403: "You are not allowed to do this",
  404: "Not found",
  409: "This conflicts with the current state",
  413: "The request is too large",
  422: "Some values are not valid",
  429: "Too many attempts",
};

/** One sentence for a failed response: the API's own message when it gave one. */
export function describeError(status: number, body: unknown): ApiError {
  const envelope = (body as { error?: { code?: string; message?: string; details?: ErrorDetail[] } })
    ?.error;
  if (envelope && typeof envelope.message === "string") {
    const details = Array.isArray(envelope.details) ? envelope.details : [];
    return new ApiError(envelope.message, status, envelope.code ?? "error", details);
  }
  const generic = BY_STATUS[status] ?? (status >= 500 ? "The server failed" : "The request failed");
  return new ApiError(`${generic} (HTTP ${status})`, status, "http_" + status);
}

/** A network failure (server down, connection cut) in words. */
export function networkError(): ApiError {
  return new ApiError("Cannot reach the eventrelay server: is it running?", 0, "network");
}
