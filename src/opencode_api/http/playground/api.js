// The API client of the playground: authenticated fetch, JSON errors, and SSE over fetch.
//
// URLs are relative to the page, so the playground works behind a path prefix. With a server
// password the browser's own Basic prompt supplies (and caches) the credentials for every
// same-origin fetch; a user's JWT then travels in X-User-Authorization, else in Authorization.

const meta = (name) => document.querySelector(`meta[name="opencode-${name}"]`)?.content ?? "";

export const server = {
  password: meta("password") === "1",
  jwt: meta("jwt"), // "", "optional" or "required"
  version: meta("version"),
};

const TOKEN_KEY = "opencode-playground-token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

function headers(extra = {}) {
  const result = { ...extra };
  const token = getToken();
  if (token) {
    if (server.password) result["X-User-Authorization"] = `Bearer ${token}`;
    else result.Authorization = `Bearer ${token}`;
  }
  return result;
}

export function url(path) {
  return new URL(path, document.baseURI).toString();
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = body?.error ?? {};
  const message = error.message ?? `${response.status} ${response.statusText}`;
  return new ApiError(response.status, error.type ?? "http_error", message, body);
}

/** A JSON request; throws ApiError on a non-2xx answer. */
export async function api(method, path, body, { signal } = {}) {
  const init = { method, headers: headers(), credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url(path), init);
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

/** The bytes at path as a Blob, fetched with the page's credentials (an <img src> could not
 * carry a user token); throws ApiError on a non-2xx answer. */
export async function fetchBlob(path, { signal } = {}) {
  const response = await fetch(url(path), { headers: headers(), credentials: "same-origin", signal });
  if (!response.ok) throw await failure(response);
  return response.blob();
}

/**
 * Open an SSE stream with fetch (so headers can carry credentials and Last-Event-ID) and call
 * onFrame({id, event, data}) for every frame, data parsed as JSON ("[DONE]" stays a string).
 * Resolves when the stream ends; rejects with ApiError before any frame on a non-2xx answer.
 */
export async function stream(method, path, { body, lastEventId, signal, onFrame, onOpen }) {
  const extra = { Accept: "text/event-stream" };
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (lastEventId != null) extra["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(url(path), {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
    signal,
  });
  if (!response.ok) throw await failure(response);
  onOpen?.(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const frame = parseFrame(block);
      if (frame) onFrame(frame);
    }
  }
}

export function parseFrame(block) {
  const frame = { id: null, event: "message", data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comments: ": ping"
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
  }
  if (!data.length) return null;
  const text = data.join("\n");
  try {
    frame.data = text === "[DONE]" ? text : JSON.parse(text);
  } catch {
    frame.data = text;
  }
  return frame;
}
