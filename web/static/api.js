// api.js: a small client of kvstore's HTTP API (docs/api.md) for the
// console. Every request carries the token as a bearer token; every non-2xx
// answer becomes an ApiError built from its application/problem+json body.

const API = '/api/v1';

/** ApiError is a failed request: the problem details of the answer. */
export class ApiError extends Error {
  constructor({ status = 0, title = 'Error', detail = '', code = '', requestId = '' } = {}) {
    super(detail || title);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.requestId = requestId;
  }
}

/** problemFrom turns a non-2xx response into an ApiError. */
export async function problemFrom(res) {
  const requestId = res.headers.get('X-Request-Id') || '';
  let text = '';
  try {
    text = await res.text();
  } catch {
    // The body could not be read; the status still says what happened.
  }
  const type = res.headers.get('Content-Type') || '';
  if (type.startsWith('application/problem+json') || type.startsWith('application/json')) {
    try {
      const p = JSON.parse(text);
      return new ApiError({
        status: res.status,
        title: String(p.title || res.statusText || `HTTP ${res.status}`),
        detail: String(p.detail || ''),
        code: String(p.code || ''),
        requestId: String(p.request_id || requestId),
      });
    } catch {
      // Not JSON after all: fall through to the plain-text form.
    }
  }
  return new ApiError({
    status: res.status,
    title: `HTTP ${res.status} ${res.statusText}`.trim(),
    detail: text.slice(0, 300).trim() || 'The server answered without details.',
    code: '',
    requestId,
  });
}

/**
 * keyPath percent-encodes each slash-separated segment of a key, so that
 * "a/b c?" becomes "a/b%20c%3F" and the path keeps its slashes.
 */
export function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

/**
 * keyProblem returns why the server would refuse key, or '' when it is a
 * clean path. Browsers resolve "." and ".." segments (even percent-encoded)
 * before sending a URL, which would write to another key, so such keys
 * must never be sent.
 */
export function keyProblem(key) {
  if (key === '') return 'the key is empty';
  if (key.startsWith('/')) return 'a key must not start with "/"';
  if (key.endsWith('/')) return 'a key must not end with "/"';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return 'a key must not contain control characters';
  for (const seg of key.split('/')) {
    if (seg === '') return 'a key must not have an empty segment ("//")';
    if (seg === '.' || seg === '..') return `a key must not have a "${seg}" path segment`;
  }
  return '';
}

/** Client talks to the API with one token. */
export class Client {
  /**
   * @param {string} token the bearer token
   * @param {{onUnauthorized?: (e: ApiError) => void}} hooks
   */
  constructor(token, hooks = {}) {
    this.token = token;
    this.onUnauthorized = hooks.onUnauthorized || (() => {});
  }

  /** url builds an API URL (relative to the page) with query parameters. */
  url(path, params = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const qs = q.toString();
    return `${API}/${path}${qs ? `?${qs}` : ''}`;
  }

  /** request sends one request and returns the 2xx response or throws. */
  async request(method, path, { params, headers = {}, body, signal } = {}) {
    let res;
    try {
      res = await fetch(this.url(path, params), {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...headers },
        body,
        signal,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError({ title: 'Network error', detail: `The server could not be reached (${err.message}).` });
    }
    if (res.ok) return res;
    const problem = await problemFrom(res);
    if (res.status === 401) this.onUnauthorized(problem);
    throw problem;
  }

  async json(method, path, opts) {
    const res = await this.request(method, path, opts);
    return res.json();
  }

  /** status is GET /api/v1/status. */
  status() {
    return this.json('GET', 'status');
  }

  /** list is one page of keys (without values) under prefix. */
  list({ prefix = '', limit = 25, after = '' } = {}) {
    return this.json('GET', 'kv', { params: { prefix, limit, after, keys_only: 'true' } });
  }

  /** get reads a key: its value as bytes and its metadata. */
  async get(key) {
    const res = await this.request('GET', `kv/${keyPath(key)}`);
    const value = new Uint8Array(await res.arrayBuffer());
    const h = res.headers;
    return {
      key,
      value,
      contentType: h.get('Content-Type') || '',
      revision: Number(unquote(h.get('ETag'))),
      version: Number(h.get('X-KV-Version')),
      createRevision: Number(h.get('X-KV-Create-Revision')),
      expiresAt: h.get('X-KV-Expires-At') || null,
    };
  }

  /**
   * put writes a key. ifMatch is the revision an edit started from;
   * create asks for If-None-Match: * so an existing key is not overwritten.
   */
  put(key, body, { contentType, ttl, ifMatch, create } = {}) {
    const headers = {};
    if (contentType) headers['Content-Type'] = contentType;
    if (ifMatch !== undefined) headers['If-Match'] = `"${ifMatch}"`;
    if (create) headers['If-None-Match'] = '*';
    return this.json('PUT', `kv/${keyPath(key)}`, { params: { ttl }, headers, body });
  }

  /** remove deletes a key at revision ifMatch. */
  async remove(key, { ifMatch } = {}) {
    const headers = {};
    if (ifMatch !== undefined) headers['If-Match'] = `"${ifMatch}"`;
    const res = await this.request('DELETE', `kv/${keyPath(key)}`, { headers });
    return Number(res.headers.get('X-KV-Revision'));
  }
}

function unquote(etag) {
  return (etag || '').replace(/^W\//, '').replace(/^"|"$/g, '');
}
