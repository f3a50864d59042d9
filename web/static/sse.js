// sse.js: Server-Sent Events over fetch(). EventSource cannot send an
// Authorization header and the token must never go into a URL, so the
// console reads the watch stream with fetch and a ReadableStream, parses
// the event-stream format itself, and reconnects with a Last-Event-ID
// header after a short backoff.

import { problemFrom } from './api.js';

/**
 * SSEParser parses the text/event-stream format: "id:" and "data:" fields,
 * "retry:" hints and ":" comments (ignored); a blank line ends an event.
 */
export class SSEParser {
  /**
   * @param {(msg: {id: string, data: string}) => void} onMessage
   * @param {(ms: number) => void} onRetry
   */
  constructor(onMessage, onRetry = () => {}) {
    this.onMessage = onMessage;
    this.onRetry = onRetry;
    this.buffer = '';
    this.data = [];
    this.lastEventId = '';
  }

  /** push feeds a decoded chunk of the stream. */
  push(chunk) {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) return;
      // A lone "\r" at the end may be the first half of "\r\n".
      if (m[0] === '\r' && m.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onMessage({ id: this.lastEventId, data: this.data.join('\n') });
      }
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return; // a comment, such as the heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        // "event" and unknown fields are not used by kvstore.
    }
  }
}

const MAX_BACKOFF_MS = 30000;

/**
 * watch follows /api/v1/watch for a prefix until close() is called.
 *
 * Callbacks:
 *  - onEvent(event): one parsed change ({type, key, revision, ...}).
 *  - onState(state, info): 'connecting' | 'live' | 'reconnecting' |
 *    'stopped' (info.reason says why; the watch does not retry).
 *  - onConnected({resumed}): the stream is open; resumed is false when it
 *    started without a resume point (first connection, after 410
 *    compacted, or before any event was seen), so the caller should reload
 *    what it shows to cover the changes it may have missed.
 *  - onCompacted(): the server no longer holds the history to resume from.
 *  - onUnauthorized(problem): the token was refused; the watch stops.
 */
export function watch({ url, token, ...callbacks }) {
  const ctl = new AbortController();
  const { signal } = ctl;
  // After close() no callback runs, so a stale watch never touches the page.
  const guard =
    (fn) =>
    (...args) => {
      if (!signal.aborted && fn) fn(...args);
    };
  const onEvent = guard(callbacks.onEvent);
  const onState = guard(callbacks.onState);
  const onConnected = guard(callbacks.onConnected);
  const onCompacted = guard(callbacks.onCompacted);
  const onUnauthorized = guard(callbacks.onUnauthorized);
  let lastId = '';
  let retryMs = 1000;
  let failures = 0;

  async function connectOnce() {
    const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
    if (lastId !== '') headers['Last-Event-ID'] = lastId;
    onState('connecting');
    const res = await fetch(url, { headers, signal, cache: 'no-store', credentials: 'omit' });
    if (res.status === 410) {
      await res.body?.cancel();
      lastId = '';
      onCompacted();
      return 'compacted';
    }
    if (!res.ok) {
      const problem = await problemFrom(res);
      if (res.status === 401) {
        onUnauthorized(problem);
        return 'stop';
      }
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        // Asking again will not help (such as 403 for a prefix the token
        // may not read).
        onState('stopped', { reason: `${problem.title}: ${problem.detail}` });
        return 'stop';
      }
      throw problem;
    }
    failures = 0;
    onState('live');
    onConnected({ resumed: lastId !== '' });
    const parser = new SSEParser(
      (msg) => {
        lastId = msg.id;
        let ev;
        try {
          ev = JSON.parse(msg.data);
        } catch {
          return; // not a kvstore change; ignore it
        }
        onEvent(ev);
      },
      (ms) => {
        retryMs = ms;
      },
    );
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'ended';
      parser.push(value);
    }
  }

  (async () => {
    while (!signal.aborted) {
      let reason = '';
      try {
        const outcome = await connectOnce();
        if (outcome === 'stop') return;
        if (outcome === 'compacted') continue; // at once, without a resume point
        reason = 'the stream ended';
      } catch (err) {
        if (signal.aborted) break;
        reason = err && err.message ? err.message : String(err);
      }
      failures += 1;
      const delay = Math.min(retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS) * (0.8 + Math.random() * 0.4);
      onState('reconnecting', { delay, reason });
      try {
        await sleep(delay, signal);
      } catch {
        break; // closed
      }
    }
  })();

  return {
    close() {
      ctl.abort();
    },
  };
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const id = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(id);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
