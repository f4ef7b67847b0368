// The public API, with the signed-in token. The token lives in sessionStorage only (gone when the
// tab closes, never sent by the browser on its own as a cookie would be).

const KEY = "ingest-console-token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
  },
  set(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); },
  clear() { sessionStorage.removeItem(KEY); },
  valid() {
    const s = this.get();
    return Boolean(s && s.token && s.expires_at > Date.now());
  },
  scopes() { return new Set(((this.get() || {}).scope || "").split(" ").filter(Boolean)); },
};

export function authHeader() {
  const s = session.get();
  return s ? { Authorization: `Bearer ${s.token}` } : {};
}

async function errorOf(resp) {
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON: described by status below */ }
  const err = body && body.error;
  if (err && typeof err.message === "string") {
    return new ApiError(resp.status, err.code, err.message, err.details);
  }
  return new ApiError(resp.status, "http_" + resp.status, statusWords(resp.status), {});
}

function statusWords(status) {
  return {
    401: "You are not signed in, or your session has expired.",
    403: "Your account is not allowed to do this.",
    404: "Not found.",
    413: "The file is too large for this server.",
    502: "The storage did not answer; try again in a moment.",
    503: "The server is busy or its database is down; try again in a moment.",
  }[status] || `The server answered with an error (HTTP ${status}).`;
}

// credentials "omit": no cookies, and no browser login prompt on a 401 with a Basic challenge.
export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, credentials: "omit", headers: { Accept: "application/json", ...authHeader(), ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection.", {});
  }
  if (resp.status === 401 && path !== TOKEN_PATH) {
    session.clear();
    window.dispatchEvent(new Event("signed-out"));
  }
  if (!resp.ok) throw await errorOf(resp);
  return raw ? resp : resp.json();
}

export const TOKEN_PATH = "/api/ingestion/generatejwt";

function remember(client, answer) {
  session.set({ client, token: answer.token, scope: answer.scope || "",
                expires_at: Date.now() + (answer.expires_in || 3600) * 1000 });
}

export async function signIn(clientId, secret) {
  // The token endpoint answers text/plain unless asked for JSON: always ask for JSON.
  const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${clientId}:${secret}`)));
  const answer = await api(TOKEN_PATH, { headers: { Authorization: `Basic ${basic}` } });
  remember(clientId, answer);
}

export async function openSignIn() {
  const answer = await api(TOKEN_PATH);
  remember("anonymous (open token endpoint)", answer);
}

let settings = null;
async function serverSettings() {
  // Asked, not probed: a probe's 401 or 405 would show as an error in the browser console.
  if (!settings) {
    try {
      const resp = await fetch("/console/settings.json", { credentials: "omit" });
      settings = resp.ok ? await resp.json() : {};
    } catch {
      settings = {};
    }
  }
  return settings;
}

export async function tokenEndpointIsOpen() {
  return Boolean((await serverSettings()).open_token_endpoint);
}

export async function resumableAvailable() {
  // The tus endpoint may not exist on this server: then uploads go as one request.
  if (!window.tus || !window.tus.isSupported || !(await serverSettings()).resumable) return false;
  try {
    const resp = await fetch("/api/ingestion/resumable", { method: "OPTIONS",
                                                          credentials: "omit" });
    return resp.ok && resp.headers.has("Tus-Version");
  } catch {
    return false;
  }
}

export async function download(path, fallbackName) {
  const resp = await api(path, { raw: true, headers: { Accept: "text/csv" } });
  const blob = await resp.blob();
  const disposition = resp.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = match ? match[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export async function fetchText(path) {
  const resp = await api(path, { raw: true, headers: { Accept: "text/csv" } });
  return resp.text();
}

// An API error in words: the message, and the details a person can act on.
export function describe(err) {
  if (!(err instanceof ApiError)) return { title: "Something went wrong", lines: [String(err.message || err)] };
  const d = err.details || {};
  const lines = [];
  if (d.field) lines.push(`Field: ${d.field}.`);
  // Lists the message already holds are not repeated (missing columns listed once).
  const said = (list) => list.every((x) => String(err.message).includes(x));
  if (Array.isArray(d.columns) && d.columns.length && !said(d.columns)) lines.push(`Columns: ${d.columns.join(", ")}.`);
  if (Array.isArray(d.missing) && d.missing.length && !said(d.missing)) lines.push(`Missing: ${d.missing.join(", ")}.`);
  if (d.line) lines.push(`Line ${d.line}.`);
  if (Array.isArray(d.allowed)) lines.push(`Allowed: ${d.allowed.join(", ")}.`);
  if (d.retry_after_s) lines.push(`Try again in ${Math.ceil(d.retry_after_s)} seconds.`);
  if (d.request_id) lines.push(`If you report this, quote request id ${d.request_id}.`);
  const title = {
    400: "The request was refused", 401: "Please sign in", 403: "Not allowed",
    404: "Not found", 409: "Conflict", 410: "Gone", 413: "Too large", 415: "Wrong kind of file",
    429: "Too many attempts",
  }[err.status] || (err.status >= 500 ? "The server had a problem" : "Error");
  return { title, lines: [sentence(err.message), ...lines] };
}

function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  return t[0].toUpperCase() + t.slice(1) + (/[.!?)]$/.test(t) ? "" : ".");
}
