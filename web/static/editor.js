// editor.js: the form that creates a key (If-None-Match: *) or edits one
// (If-Match: "<revision>"), so that a concurrent change answers 412
// instead of being overwritten.

import { ApiError, keyProblem } from './api.js';
import { $, setText, show } from './dom.js';
import { goDuration, textOf } from './format.js';

const DEFAULT_CONTENT_TYPE = 'text/plain; charset=utf-8';

export class Editor {
  /** @param {object} ctx the console (client, detail, keys, fail, flash) */
  constructor(ctx) {
    this.ctx = ctx;
    this.mode = 'create';
    this.base = null; // the revision an edit started from
    this.saving = false;
    $('editor-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    $('editor-cancel').addEventListener('click', () => this.cancel());
  }

  /** openNew shows an empty form; the key starts with prefix. */
  openNew(prefix) {
    this.mode = 'create';
    this.base = null;
    setText('editor-heading', 'New key');
    const key = $('editor-key');
    key.readOnly = false;
    key.value = prefix;
    $('editor-content-type').value = DEFAULT_CONTENT_TYPE;
    $('editor-ttl').value = '';
    $('editor-value').value = '';
    show($('editor-binary'), false);
    show($('editor-changed'), false);
    setText('editor-revision', 'Creating fails if the key already exists.');
    this.ctx.detail.cancelReveal(); // a detail still loading must not replace the form
    show($('detail-panel'), false);
    show($('editor-panel'), true);
    key.focus();
  }

  /** openEdit fills the form with kv, a key read with Client.get. */
  openEdit(kv) {
    this.mode = 'edit';
    this.base = kv.revision;
    setText('editor-heading', 'Edit key');
    const key = $('editor-key');
    key.readOnly = true;
    key.value = kv.key;
    $('editor-content-type').value = kv.contentType || '';
    // Keep the remaining lifetime; an empty TTL would remove it.
    const left = kv.expiresAt ? (Date.parse(kv.expiresAt) - Date.now()) / 1000 : 0;
    $('editor-ttl').value = left > 0 ? goDuration(left) : '';
    const text = textOf(kv.value);
    $('editor-value').value = text ?? '';
    show($('editor-binary'), text === null);
    show($('editor-changed'), false);
    setText('editor-revision', `Editing revision ${kv.revision}. Saving fails if someone else changes the key first.`);
    show($('editor-panel'), true);
    $('editor-value').focus();
  }

  /** changedElsewhere warns that the key changed while the form is open. */
  changedElsewhere(ev) {
    if ($('editor-panel').hidden || this.mode !== 'edit' || ev.key !== $('editor-key').value) return;
    if (ev.revision <= this.base) return;
    const what = ev.type === 'put' ? 'changed' : 'deleted';
    setText('editor-changed', `Someone ${what} this key at revision ${ev.revision} while you edit it; saving will be refused.`);
    show($('editor-changed'), true);
  }

  async save() {
    if (this.saving) return;
    const key = $('editor-key').value;
    const problem = keyProblem(key);
    if (problem) {
      this.ctx.fail(new ApiError({ title: 'Invalid key', detail: problem, code: 'invalid_key' }), 'Checked in the browser; nothing was sent.');
      return;
    }
    const contentType = $('editor-content-type').value.trim();
    const ttl = $('editor-ttl').value.trim();
    // A Blob without a type: the Content-Type header is exactly ours.
    const body = new Blob([$('editor-value').value]);
    this.saving = true;
    $('editor-save').disabled = true;
    try {
      const res = await this.ctx.client.put(key, body, {
        contentType,
        ttl,
        ifMatch: this.mode === 'edit' ? this.base : undefined,
        create: this.mode === 'create',
      });
      this.ctx.clearError();
      this.ctx.flash(`Saved ${key} at revision ${res.revision}.`);
      this.close();
      this.ctx.keys.refreshSoon();
      await this.ctx.detail.open(key);
    } catch (err) {
      this.ctx.fail(err, this.hintFor(err, key));
    } finally {
      this.saving = false;
      $('editor-save').disabled = false;
    }
  }

  hintFor(err, key) {
    if (err.status !== 412) return '';
    if (this.mode === 'create') return `"${key}" already exists. Open it from the list to edit it.`;
    return `"${key}" was changed by someone else after you opened revision ${this.base}, so your change was not saved. Your text is still in the form: copy it, cancel, reopen the key and apply your change again.`;
  }

  cancel() {
    this.close();
    this.ctx.detail.reshow();
  }

  close() {
    show($('editor-panel'), false);
  }
}
