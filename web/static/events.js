// events.js: the live event log. It watches the prefix being browsed and
// lists each change as it happens, newest first.

import { $, el, pathNodes, setText, show } from './dom.js';
import { clockTime, humanDuration, preview } from './format.js';
import { watch } from './sse.js';

const MAX_ENTRIES = 200;

const STATE_TEXT = {
  idle: 'Not watching',
  connecting: 'Connecting…',
  live: 'Live',
  stopped: 'Stopped',
};

export class LiveLog {
  /** @param {object} ctx the console (client, onChange, resync, openKey, unauthorized) */
  constructor(ctx) {
    this.ctx = ctx;
    this.watcher = null;
    $('events-clear').addEventListener('click', () => this.clear());
  }

  /** start watches prefix, replacing any earlier watch. */
  start(prefix) {
    this.stop();
    const client = this.ctx.client;
    if (!client) return;
    setText('watch-scope', prefix ? `Watching keys under “${prefix}”.` : 'Watching all keys.');
    this.watcher = watch({
      url: client.url('watch', { prefix }),
      token: client.token,
      onEvent: (ev) => this.onEvent(ev),
      onState: (state, info) => this.onState(state, info),
      onConnected: ({ resumed }) => {
        // Without a resume point, changes made while disconnected are
        // only visible by reading the list again.
        if (!resumed) this.ctx.resync();
      },
      onCompacted: () => {
        this.note('The server no longer holds the changes since the last one seen; reloading the list.');
      },
      onUnauthorized: (problem) => this.ctx.unauthorized(problem),
    });
  }

  stop() {
    if (this.watcher) this.watcher.close();
    this.watcher = null;
    this.onState('idle');
  }

  onState(state, info = {}) {
    const status = $('watch-status');
    status.dataset.state = state;
    status.textContent =
      state === 'reconnecting' ? `Reconnecting in ${humanDuration(info.delay)}…` : STATE_TEXT[state] || state;
    status.title = info.reason || '';
  }

  onEvent(ev) {
    const type = String(ev.type || 'change');
    const key = String(ev.key || '');
    const item = el(
      'li',
      {
        className: `event event-${type}`,
        dataset: { testid: 'event', type, key, revision: String(ev.revision) },
      },
      el('time', { className: 'event-time', text: clockTime(), attrs: { datetime: new Date().toISOString() } }),
      el('span', { className: `badge badge-${type}`, text: type }),
      el(
        'button',
        {
          className: 'link event-key',
          attrs: { type: 'button', title: `Open ${key}` },
          on: { click: () => this.ctx.openKey(key) },
        },
        ...pathNodes(key),
      ),
      el('span', { className: 'event-rev', text: `rev ${ev.revision}` }),
      type === 'put' ? el('span', { className: 'event-preview', text: preview(ev.value) }) : null,
    );
    if (type !== 'put') item.querySelector('.event-key').disabled = true;
    this.add(item);
    this.ctx.onChange(ev);
  }

  /** note adds a line that is not a change, such as a resync. */
  note(text) {
    this.add(
      el(
        'li',
        { className: 'event event-note', dataset: { testid: 'event-note' } },
        el('time', { className: 'event-time', text: clockTime() }),
        el('span', { className: 'event-preview', text }),
      ),
    );
  }

  add(item) {
    const log = $('event-log');
    log.prepend(item);
    while (log.children.length > MAX_ENTRIES) log.lastElementChild.remove();
    show($('events-empty'), false);
  }

  clear() {
    $('event-log').replaceChildren();
    show($('events-empty'), true);
  }
}
