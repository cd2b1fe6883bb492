// The API as the console uses it: the key (sessionStorage only), JSON calls, and streamed
// completions read from the server-sent events the API sends.
const KEY = 'braid.key';

export function getKey() { return sessionStorage.getItem(KEY) || ''; }
export function setKey(k) { if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY); }

function headers(json) {
  const h = {};
  const k = getKey();
  if (k) h.Authorization = 'Bearer ' + k;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

// An Error carrying the API's own words: {"error": {"message", "code", ...}}.
export class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e && e.message ? e.message : `HTTP ${status}`);
    this.status = status;
    this.code = e && e.code;
  }
}

async function fail(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, body);
}

export async function call(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body !== undefined),
    body: body !== undefined ? JSON.stringify(body) : undefined });
  if (!res.ok) throw await fail(res);
  return res.json();
}

// POSTs a streaming request; onEvent(chunk) for each JSON event.  Resolves at [DONE] or end.
export async function stream(path, body, onEvent, signal) {
  const res = await fetch(path, { method: 'POST', headers: headers(true), signal,
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  if (!res.ok) throw await fail(res);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of ev.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk);
        onEvent(chunk);
      }
    }
  }
}
