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

// HTTP statuses in words, the one table: the title of an error box, and the text used when the
// answer carries no message of its own (not JSON: a proxy's page, a dropped connection).
const STATUS_WORDS = {
  400: ["The request was refused", "The server refused the request."],
  401: ["Please sign in", "You are not signed in, or your session has expired."],
  403: ["Not allowed", "Your account is not allowed to do this."],
  404: ["Not found", "Not found."],
  408: ["Too slow", "The file stopped arriving; try again."],
  409: ["Conflict", "This conflicts with the upload's current state."],
  410: ["Gone", "It is no longer there."],
  413: ["Too large", "The file is too large for this server."],
  415: ["Wrong kind of file", "The server does not take this kind of file."],
  429: ["Too many attempts", "Too many attempts; wait a moment and try again."],
  502: ["The server had a problem", "The storage did not answer; try again in a moment."],
  503: ["The server had a problem", "The server is busy or its database is down; try again in a moment."],
};

export function statusWords(status) {
  return STATUS_WORDS[status] || [status >= 500 ? "The server had a problem" : "Error",
                                  `The server answered with an error (HTTP ${status}).`];
}

// The one conversion of an error answer (fetch, XMLHttpRequest or tus alike): the server's JSON
// error when there is one, else the status in words.
export function apiError(status, body) {
  const err = body && body.error;
  if (err && typeof err.message === "string") {
    return new ApiError(status, err.code, err.message, err.details);
  }
  return new ApiError(status, "http_" + status, statusWords(status)[1], {});
}

async function errorOf(resp) {
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON: described by its status */ }
  return apiError(resp.status, body);
}

// credentials "omit": no cookies, and no browser login prompt on a 401 with a Basic challenge.
export async function api(path, { method = "GET", body, form, headers = {}, raw = false } = {}) {
  const init = { method, credentials: "omit", headers: { Accept: "application/json", ...authHeader(), ...headers } };
  if (form !== undefined) {
    init.body = form; // FormData: the browser writes the multipart boundary itself
  } else if (body !== undefined) {
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

// `client` is the token's subject, compared with an upload's `client` (may I retract it?);
// `label` is only what the page shows.
function remember(client, answer, label = client) {
  session.set({ client, label, token: answer.token, scope: answer.scope || "",
                expires_at: Date.now() + (answer.expires_in || 3600) * 1000 });
}

export async function signIn(clientId, secret) {
  // The token endpoint answers text/plain unless asked for JSON: always ask for JSON.
  const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${clientId}:${secret}`)));
  const answer = await api(TOKEN_PATH, { headers: { Authorization: `Basic ${basic}` } });
  remember(clientId, answer);
}

// The token's subject (`sub`), as the server records it on uploads; null if unreadable.
function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4))).sub || null;
  } catch {
    return null;
  }
}

export async function openSignIn() {
  const answer = await api(TOKEN_PATH);
  const client = subjectOf(answer.token) || "anonymous";
  remember(client, answer, `${client} (open token endpoint)`);
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

export async function processingEnabled() {
  return Boolean((await serverSettings()).processing);
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

// Saves a file of the API under `name` (else the name the server gives it).
export async function download(path, name) {
  const resp = await api(path, { raw: true, headers: { Accept: "text/csv" } });
  const blob = await resp.blob();
  const disposition = resp.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name || (match ? match[1] : "download");
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export async function fetchText(path) {
  const resp = await api(path, { raw: true, headers: { Accept: "text/csv" } });
  return resp.text();
}

// Titles for the refusals that have a name of their own (a wrong secret is not "please sign in").
const CODE_TITLES = {
  invalid_client: "Wrong client id or secret",
  missing_credentials: "Client id and secret needed",
  token_expired: "Your session has expired",
  token_revoked: "Your session was ended",
  missing_column: "Columns are missing",
  not_text: "The file could not be read as text",
  spec_not_found: "No such spec",
  upload_retracted: "This upload was retracted",
};

// What a refusal's details say that its message does not: lists the message already holds are
// not repeated (missing columns listed once).
export function detailLines(message, details) {
  const d = details || {};
  const lines = [];
  const said = (list) => list.every((x) => String(message || "").includes(x));
  if (d.field) lines.push(`Field: ${d.field}.`);
  if (Array.isArray(d.columns) && d.columns.length && !said(d.columns)) lines.push(`Columns: ${d.columns.join(", ")}.`);
  if (Array.isArray(d.missing) && d.missing.length && !said(d.missing)) lines.push(`Missing: ${d.missing.join(", ")}.`);
  if (d.line) lines.push(`Line ${d.line}.`);
  if (Array.isArray(d.allowed)) lines.push(`Allowed: ${d.allowed.join(", ")}.`);
  if (d.retry_after_s) lines.push(`Try again in ${Math.ceil(d.retry_after_s)} seconds.`);
  return lines;
}

// An API error in words: the message, and the details a person can act on.
export function describe(err) {
  if (!(err instanceof ApiError)) return { title: "Something went wrong", lines: [String(err.message || err)] };
  const d = err.details || {};
  const lines = detailLines(err.message, d);
  if (d.request_id) lines.push(`If you report this, quote request id ${d.request_id}.`);
  const title = CODE_TITLES[err.code] || statusWords(err.status)[0];
  return { title, lines: [sentence(err.message), ...lines] };
}

function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  return t[0].toUpperCase() + t.slice(1) + (/[.!?)]$/.test(t) ? "" : ".");
}
