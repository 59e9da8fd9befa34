// What every page shares: the namespace, the bearer token, calls to the REST API, Server-Sent
// Events over fetch (so the token goes in a header), and small DOM and formatting helpers.
// Every value from the API reaches the page as text (textContent), never as markup.

const TOKEN_KEY = 'kubetrain.token';
const NAMESPACE_KEY = 'kubetrain.namespace';

export const query = new URLSearchParams(location.search);

/** The namespace of the page: ?namespace=, else the last one used, else "default". */
export function namespace() {
  return query.get('namespace') || localStorage.getItem(NAMESPACE_KEY) || 'default';
}

export function rememberNamespace(ns) {
  localStorage.setItem(NAMESPACE_KEY, ns);
}

/** An answer of the API that is not 2xx, with its JSON error body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let askedForToken = false;

/** Show the token form (after a 401); a token entered there is kept for this tab only. */
export function askForToken() {
  const form = document.getElementById('token-form');
  if (!form || askedForToken) return;
  askedForToken = true;
  form.hidden = false;
  form.querySelector('input').focus();
  notice('This server needs a bearer token: enter yours above.');
}

function setUpTokenForm() {
  const form = document.getElementById('token-form');
  if (!form) return;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = form.querySelector('input').value.trim();
    if (value) {
      sessionStorage.setItem(TOKEN_KEY, value);
      location.reload();
    }
  });
}

/** fetch() of an API path with the token; throws ApiError for a non-2xx answer. */
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  let body = options.body;
  if (options.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { method: options.method || 'GET', headers, body, signal: options.signal });
  if (!response.ok) {
    let error = {};
    try { error = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401) askForToken();
    throw new ApiError(response.status, error);
  }
  return response;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

export function runsPath(ns) {
  return `/v1/namespaces/${encodeURIComponent(ns)}/trainingruns`;
}

export function runPath(ns, name) {
  return `${runsPath(ns)}/${encodeURIComponent(name)}`;
}

/**
 * Follow a Server-Sent Events stream: onEvent(name, data, id) for each event. Reconnects with
 * backoff after network errors and, with `reconnect`, after the stream ends; stops on 4xx
 * answers (onError) and when `signal` aborts. Resolves when it stops.
 */
export async function follow(path, onEvent, { signal, reconnect = false, onError = () => {} } = {}) {
  let delay = 500;
  while (!signal || !signal.aborted) {
    try {
      const response = await api(path, { signal, headers: { Accept: 'text/event-stream' } });
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end), onEvent);
          buffer = buffer.slice(end + 2);
        }
      }
      if (!reconnect) return;
    } catch (error) {
      if (signal && signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) {
        onError(error);
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function dispatch(frame, onEvent) {
  let name = 'message';
  let id = null;
  const data = [];
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (data.length === 0) return;
  let parsed;
  try { parsed = JSON.parse(data.join('\n')); } catch { return; }
  onEvent(name, parsed, id);
}

/** Whether run `a` is a newer version than run `b` (resourceVersions compare as numbers). */
export function newer(a, b) {
  const va = Number(a.metadata.resourceVersion);
  const vb = Number(b.metadata.resourceVersion);
  if (Number.isFinite(va) && Number.isFinite(vb)) return va > vb;
  return a.metadata.resourceVersion !== b.metadata.resourceVersion;
}

/** Create an element: h('a', {href: x}, 'text', child). Strings become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key in element && typeof value !== 'string') element[key] = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function notice(text) {
  const element = document.getElementById('notice');
  if (element) element.textContent = text || '';
}

export function describe(error) {
  if (error instanceof ApiError) {
    const causes = (error.body.causes || []).map((c) => `${c.field}: ${c.message}`);
    return [error.message, ...causes].join('\n');
  }
  return String(error && error.message ? error.message : error);
}

export function phaseOf(run) {
  return (run.status && run.status.phase) || 'Pending';
}

export const TERMINAL = new Set(['Succeeded', 'Failed', 'Cancelled']);

export function algorithmOf(run) {
  if (run.status && run.status.algorithm) return run.status.algorithm;
  if (run.spec.custom) return 'custom';
  return Object.keys(run.spec.algorithm || {})[0] || '';
}

export function percentOf(run) {
  if (phaseOf(run) === 'Succeeded') return 100;
  const progress = run.status && run.status.progress;
  return progress ? Math.max(0, Math.min(100, progress.percent || 0)) : 0;
}

export function scoreText(run) {
  const metrics = run.status && run.status.metrics;
  if (!metrics || metrics.score === undefined || metrics.score === null) return '';
  return `${metrics.scoreName || 'score'} ${number(metrics.score)}`;
}

export function number(value) {
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 ? value.toFixed(1) : value.toPrecision(4);
}

export function age(timestamp) {
  if (!timestamp) return '';
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function phaseBadge(phase) {
  return h('span', { class: `phase phase-${phase.toLowerCase()}` }, phase);
}

setUpTokenForm();
