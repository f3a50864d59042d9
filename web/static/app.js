// app.js: the kvstore web console's entry point. It signs in with a token
// kept in sessionStorage only (never persistent storage, a cookie or a URL),
// wires the key list, the detail and editor panels and the live event log,
// and shows every API problem (title and detail) in the error area. A 401
// from any request signs the user out.

import { ApiError, Client } from './api.js';
import { KeyDetail } from './detail.js';
import { $, setText, show } from './dom.js';
import { Editor } from './editor.js';
import { LiveLog } from './events.js';
import { KeyList } from './keys.js';

const TOKEN_KEY = 'kvstore.token';
const FLASH_MS = 5000;
const STATUS_REFRESH_MS = 250;

/** ctx is what the panels share: the client and the console's actions. */
const ctx = {
  client: null,
  revision: 0,
  openKey: (key) => ctx.detail.open(key),
  /** fail shows err; a 401 already signed out and said so. */
  fail(err, hint = '') {
    if (err && err.status === 401) return;
    showError(err, hint);
  },
  clearError,
  flash,
  unauthorized: signOutWith,
  /** onChange is called for each change the watch reports. */
  onChange(ev) {
    ctx.sawRevision(ev.revision);
    ctx.keys.refreshSoon();
    ctx.detail.onEvent(ev);
    ctx.editor.changedElsewhere(ev);
    refreshStatusSoon();
  },
  /** resync reloads what may have missed changes. */
  resync() {
    ctx.keys.refreshSoon();
    refreshStatusSoon();
  },
  sawRevision(rev) {
    if (rev > ctx.revision) {
      ctx.revision = rev;
      setText('server-revision', String(rev));
    }
  },
};
ctx.keys = new KeyList(ctx);
ctx.detail = new KeyDetail(ctx);
ctx.editor = new Editor(ctx);
ctx.live = new LiveLog(ctx);

// ---- errors and messages ------------------------------------------------

/** showError shows a problem (or any error) in the error area. */
function showError(err, hint = '') {
  if (err && err.name === 'AbortError') return;
  const p =
    err instanceof ApiError
      ? err
      : new ApiError({ title: 'Unexpected error', detail: err && err.message ? err.message : String(err) });
  setText('error-title', p.title);
  setText('error-code', p.status ? `${p.status}${p.code ? ` ${p.code}` : ''}` : p.code);
  show($('error-code'), Boolean(p.status || p.code));
  setText('error-detail', p.detail);
  setText('error-hint', hint);
  show($('error-hint'), Boolean(hint));
  setText('error-request', p.requestId ? `Request id: ${p.requestId}` : '');
  show($('error-request'), Boolean(p.requestId));
  show($('error-area'), true);
}

function clearError() {
  show($('error-area'), false);
  for (const id of ['error-title', 'error-code', 'error-detail', 'error-hint', 'error-request']) setText(id, '');
}

let flashTimer = 0;
function flash(text) {
  setText('flash', text);
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => setText('flash', ''), FLASH_MS);
}

// ---- session -------------------------------------------------------------

/** signIn verifies token with GET /status and opens the console. */
async function signIn(token) {
  const client = new Client(token);
  const status = await client.status(); // throws on a bad token
  client.onUnauthorized = signOutWith;
  sessionStorage.setItem(TOKEN_KEY, token);
  ctx.client = client;
  ctx.revision = 0;
  renderStatus(status);
  $('login-token').value = '';
  show($('login-view'), false);
  show($('console-view'), true);
  show($('server-info'), true);
  show($('logout'), true);
  browse();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  ctx.client = null;
  ctx.live.stop();
  ctx.keys.clear();
  ctx.detail.close();
  ctx.editor.close();
  ctx.live.clear();
  show($('console-view'), false);
  show($('server-info'), false);
  show($('logout'), false);
  show($('login-view'), true);
  $('login-token').focus();
}

/** signOutWith ends the session after a 401 and says why. */
function signOutWith(problem) {
  if (!ctx.client) return;
  signOut();
  showError(problem, 'The token was refused. Sign in again with a valid token.');
}

function renderStatus(st) {
  setText('server-version', st.version || '?');
  ctx.sawRevision(st.revision);
  setText('server-revision', String(ctx.revision));
  // Only an admin token is told the store-wide key count.
  const hasKeys = typeof st.keys === 'number';
  show($('server-keys').parentElement, hasKeys);
  if (hasKeys) setText('server-keys', String(st.keys));
}

let statusTimer = 0;
function refreshStatusSoon() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(async () => {
    const client = ctx.client;
    if (!client) return;
    try {
      const st = await client.status();
      if (client === ctx.client) renderStatus(st);
    } catch (err) {
      if (err.status !== 401) showError(err);
    }
  }, STATUS_REFRESH_MS);
}

// ---- browsing --------------------------------------------------------------

let watchedPrefix = null;

/** browse lists the first page under the prefix and watches it. */
function browse() {
  const prefix = $('prefix-input').value;
  const limit = Number($('page-size').value);
  ctx.keys.browse(prefix, limit);
  if (prefix !== watchedPrefix || !ctx.live.watcher) {
    watchedPrefix = prefix;
    ctx.live.start(prefix);
  }
}

// ---- wiring ------------------------------------------------------------

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('login-token').value.trim();
  if (!token) {
    showError(new ApiError({ title: 'Token required', detail: 'Enter an API token to sign in.' }));
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  try {
    await signIn(token);
    clearError();
  } catch (err) {
    showError(err, err.status === 401 ? 'Check the token and try again.' : '');
  } finally {
    button.disabled = false;
  }
});

$('logout').addEventListener('click', () => {
  signOut();
  watchedPrefix = null;
  clearError();
  flash('Signed out.');
});

$('error-dismiss').addEventListener('click', clearError);

$('browse-form').addEventListener('submit', (e) => {
  e.preventDefault();
  browse();
});
$('page-size').addEventListener('change', browse);
$('new-key').addEventListener('click', () => ctx.editor.openNew(ctx.keys.prefix));

// ---- start -------------------------------------------------------------

async function start() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    show($('login-view'), true);
    return;
  }
  try {
    await signIn(token);
  } catch (err) {
    if (err.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    show($('login-view'), true);
    showError(err, err.status === 401 ? 'The saved token was refused. Sign in again.' : '');
  }
}

start();
