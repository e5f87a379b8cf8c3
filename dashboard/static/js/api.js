// The hub's HTTP API (docs/api.md): JSON, session cookie, CSRF double-submit.

import { getLang } from "./i18n.js";

export const BASE = "/api/v1";

let csrfToken = null;
export function setCsrf(token) {
  csrfToken = token || null;
}

/** An error with the hub's message in the user's language and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, messageVi) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.messageVi = messageVi || "";
    this.details = {}; // the rest of the hub's `error` object (a 409's current, by, at_ms, outcome)
  }
  /** The hub's own words, in the language the user reads. */
  localized() {
    return (getLang() === "vi" && this.messageVi) || this.message;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { quiet401 = false, timeoutMs = 15000 } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: ctl.signal,
    });
  } catch (err) {
    throw new ApiError(0, "network", "network", "");
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 204) return null;
  let payload = null;
  const text = await res.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (!res.ok) {
    const e = (payload && payload.error) || {};
    const detail = payload && typeof payload.detail === "string" ? payload.detail : "";
    const err = new ApiError(res.status, e.code, e.message || detail, e.message_vi);
    err.details = e;
    if (res.status === 429) err.retryAfter = Number(res.headers.get("Retry-After")) || null;
    if (res.status === 401 && !quiet401) onUnauthorized();
    throw err;
  }
  return payload;
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body = {}, opts) => request("POST", path, body, opts);
export const patch = (path, body = {}, opts) => request("PATCH", path, body, opts);
export const del = (path, opts) => request("DELETE", path, undefined, opts);

/** Area paths go in the URL as one segment (slashes as %2F). */
export const areaSeg = (path) => encodeURIComponent(path);
