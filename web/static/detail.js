// detail.js: one key's value and metadata, with Edit and Delete. Values
// are shown as text when they are UTF-8, else as a hex dump.

import { $, setText, show } from './dom.js';
import { expiryText, formatBytes, hexDump, textOf } from './format.js';

export class KeyDetail {
  /** @param {object} ctx the console (client, keys, editor, fail, flash) */
  constructor(ctx) {
    this.ctx = ctx;
    this.target = null; // the key shown or being opened
    this.reveal = false; // show the panel when the load in flight ends
    this.kv = null; // what was read of target: {key, value, contentType, revision, ...}
    this.gone = false;
    this.hex = false;
    this.seq = 0;
    $('detail-edit').addEventListener('click', () => this.edit());
    $('detail-delete').addEventListener('click', () => this.remove());
    $('detail-close').addEventListener('click', () => this.close());
    $('detail-toggle').addEventListener('click', () => {
      this.hex = !this.hex;
      this.renderValue();
    });
  }

  /** open loads key and shows it. */
  open(key) {
    this.target = key;
    this.reveal = true;
    return this.load();
  }

  /**
   * load reads the target key and renders it; only the latest load counts,
   * and a pending reveal survives reloads triggered by the watch.
   */
  async load() {
    const key = this.target;
    const seq = ++this.seq;
    try {
      const kv = await this.ctx.client.get(key);
      if (seq !== this.seq) return;
      const text = textOf(kv.value);
      if (this.reveal || !this.kv || this.kv.key !== key || text === null) this.hex = text === null;
      this.kv = kv;
      this.gone = false;
      this.render();
      if (this.reveal) {
        this.reveal = false;
        this.ctx.editor.close();
        show($('detail-panel'), true);
        this.ctx.keys.select(key);
      }
    } catch (err) {
      if (seq !== this.seq) return;
      this.reveal = false;
      this.ctx.fail(err);
    }
  }

  /** cancelReveal keeps a load in flight from showing the panel. */
  cancelReveal() {
    this.reveal = false;
  }

  render() {
    const kv = this.kv;
    setText('detail-key', kv.key);
    setText('detail-content-type', kv.contentType || '—');
    setText('detail-size', formatBytes(kv.value.length));
    setText('detail-revision', String(kv.revision));
    setText('detail-version', String(kv.version));
    setText('detail-create-revision', String(kv.createRevision));
    const expires = $('detail-expires');
    expires.textContent = kv.expiresAt ? `${expiryText(kv.expiresAt)} (${kv.expiresAt})` : 'never';
    show($('detail-gone'), this.gone);
    $('detail-edit').disabled = this.gone;
    $('detail-delete').disabled = this.gone;
    this.renderValue();
  }

  renderValue() {
    const kv = this.kv;
    if (!kv) return;
    const text = textOf(kv.value);
    const asHex = this.hex || text === null;
    const pre = $('detail-value');
    pre.textContent = asHex ? hexDump(kv.value) : text;
    pre.dataset.format = asHex ? 'hex' : 'text';
    pre.classList.toggle('empty-value', kv.value.length === 0);
    setText('detail-format', asHex ? (text === null ? 'binary · hex' : 'hex') : 'UTF-8 text');
    const toggle = $('detail-toggle');
    toggle.textContent = asHex ? 'Show text' : 'Show hex';
    toggle.hidden = text === null;
    toggle.setAttribute('aria-pressed', String(asHex));
  }

  /** onEvent follows the changes of the key shown (or being opened). */
  onEvent(ev) {
    if (this.target === null || ev.key !== this.target) return;
    const kv = this.kv && this.kv.key === ev.key ? this.kv : null;
    if (kv && ev.revision <= kv.revision) return; // already shown
    if (ev.type === 'put') {
      // Re-read it, also behind the editor (which warns on its own).
      this.load();
      return;
    }
    if (!kv) return; // the load in flight will report the key missing
    this.seq++; // a load in flight would only answer 404
    this.reveal = false;
    this.gone = true;
    kv.revision = ev.revision;
    setText('detail-gone', `This key was ${ev.type === 'expire' ? 'expired' : 'deleted'} at revision ${ev.revision}.`);
    this.render();
  }

  edit() {
    if (!this.kv || this.gone) return;
    show($('detail-panel'), false);
    this.ctx.editor.openEdit(this.kv);
  }

  async remove() {
    const kv = this.kv;
    if (!kv || this.gone) return;
    // A native confirmation dialog: it cannot be skipped by accident.
    if (!window.confirm(`Delete the key "${kv.key}"?\n\nThis cannot be undone.`)) return;
    try {
      const revision = await this.ctx.client.remove(kv.key, { ifMatch: kv.revision });
      this.ctx.flash(`Deleted ${kv.key} at revision ${revision}.`);
      this.close();
      this.ctx.keys.refreshSoon();
    } catch (err) {
      const hint =
        err.status === 412
          ? `"${kv.key}" changed after you loaded revision ${kv.revision}, so it was not deleted. Check the new value, then delete again.`
          : '';
      this.ctx.fail(err, hint);
      if (err.status === 412) this.open(kv.key);
    }
  }

  /** reshow brings the panel back after the editor closes. */
  reshow() {
    if (this.kv && this.kv.key === this.target) show($('detail-panel'), true);
  }

  close() {
    this.seq++;
    this.target = null;
    this.reveal = false;
    this.kv = null;
    this.gone = false;
    show($('detail-panel'), false);
    $('detail-value').textContent = '';
    this.ctx.keys.select('');
  }
}
