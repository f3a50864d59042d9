// keys.js: the key list. It pages through GET /api/v1/kv with the "next"
// cursor and keeps a stack of the cursors of earlier pages for "Previous".

import { $, el, pathNodes, setText, show } from './dom.js';
import { expiryText } from './format.js';

const REFRESH_DELAY_MS = 150;

export class KeyList {
  /** @param {object} ctx the console (client, openKey, fail) */
  constructor(ctx) {
    this.ctx = ctx;
    this.prefix = '';
    this.limit = 25;
    this.after = ''; // cursor of the page shown
    this.stack = []; // cursors of the pages before it
    this.next = '';
    this.selected = '';
    this.seq = 0;
    this.timer = 0;
    $('page-prev').addEventListener('click', () => this.previousPage());
    $('page-next').addEventListener('click', () => this.nextPage());
  }

  /** browse shows the first page of keys under prefix. */
  browse(prefix, limit) {
    this.prefix = prefix;
    this.limit = limit;
    this.after = '';
    this.stack = [];
    return this.load();
  }

  nextPage() {
    if (!this.next) return;
    this.stack.push(this.after);
    this.after = this.next;
    this.load();
  }

  previousPage() {
    if (this.stack.length === 0) return;
    this.after = this.stack.pop();
    this.load();
  }

  /** refreshSoon reloads the page shown, coalescing bursts of changes. */
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), REFRESH_DELAY_MS);
  }

  /** load fetches and renders the current page; stale answers are dropped. */
  async load() {
    const client = this.ctx.client;
    if (!client) return;
    const seq = ++this.seq;
    $('key-list').setAttribute('aria-busy', 'true');
    try {
      const page = await client.list({ prefix: this.prefix, limit: this.limit, after: this.after });
      if (seq !== this.seq || client !== this.ctx.client) return;
      if (page.items.length === 0 && this.stack.length > 0) {
        // The page emptied (keys were deleted): step back.
        this.after = this.stack.pop();
        this.load();
        return;
      }
      this.render(page);
      this.ctx.sawRevision(page.revision);
    } catch (err) {
      if (seq === this.seq) this.ctx.fail(err);
    } finally {
      if (seq === this.seq) $('key-list').removeAttribute('aria-busy');
    }
  }

  render(page) {
    this.next = page.next || '';
    const now = Date.now();
    const rows = page.items.map((item) => this.row(item, now));
    $('key-list').replaceChildren(...rows);
    show($('key-empty'), rows.length === 0);
    $('page-prev').disabled = this.stack.length === 0;
    $('page-next').disabled = this.next === '';
    const first = this.stack.length * this.limit + 1;
    const range = rows.length ? `keys ${first}–${first + rows.length - 1}` : 'no keys';
    setText('page-info', `Page ${this.stack.length + 1} · ${range} · revision ${page.revision}`);
    setText('key-caption', this.prefix ? `Keys under ${this.prefix}` : 'All keys');
  }

  row(item, now) {
    const key = item.key;
    // Under a "directory" prefix, the prefix is shown muted (and hidden on
    // small screens): the rest is what tells the rows apart.
    const dir = this.prefix.endsWith('/') && key.startsWith(this.prefix) ? this.prefix : '';
    const open = el(
      'button',
      {
        className: 'link key-link',
        attrs: { type: 'button', title: key },
        dataset: { testid: 'key-open' },
        on: { click: () => this.ctx.openKey(key) },
      },
      dir ? el('span', { className: 'key-prefix' }, ...pathNodes(dir)) : null,
      ...pathNodes(key.slice(dir.length)),
    );
    const tr = el(
      'tr',
      { dataset: { testid: 'key-row', key } },
      el('td', { className: 'key-cell' }, open),
      el('td', { className: 'num', text: String(item.version) }),
      el('td', { className: 'num', text: String(item.revision) }),
      el('td', {
        className: item.expires_at ? 'expiry' : 'expiry muted',
        text: expiryText(item.expires_at, now),
        title: item.expires_at || 'no TTL',
      }),
    );
    if (key === this.selected) {
      tr.classList.add('selected');
      tr.setAttribute('aria-current', 'true');
    }
    return tr;
  }

  /** select highlights the row of key (the one shown in the detail). */
  select(key) {
    this.selected = key;
    for (const tr of $('key-list').querySelectorAll('tr')) {
      const on = tr.dataset.key === key;
      tr.classList.toggle('selected', on);
      if (on) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
    }
  }

  clear() {
    clearTimeout(this.timer);
    this.seq++;
    this.selected = '';
    this.next = '';
    this.stack = [];
    this.after = '';
    $('key-list').replaceChildren();
    show($('key-empty'), false);
    setText('page-info', 'Page 1');
  }
}
