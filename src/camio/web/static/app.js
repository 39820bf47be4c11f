// camio web interface: the router, the shared API client, the session and the live hub.
//
// Every page is an ES module under pages/ exporting `render(root, ctx)`. The router loads it on
// demand for the URL's hash (#/live, #/rules, ...), and ctx gives it the query string and
// helpers whose resources are released when the user leaves the page.

import { LiveHub } from './lib/live.js';
import { errorPanel, h, spinner, toast } from './lib/ui.js';

export { toast };

// ---------------------------------------------------------------------------------------------
// Session (kept in memory only; the cookie itself is HttpOnly)

export const session = { user: null, csrf: null, device: null };

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

/** Whether the logged-in user has at least `role`. */
export function can(role) {
  const mine = session.user?.role;
  return mine !== undefined && (ROLE_RANK[mine] ?? -1) >= ROLE_RANK[role];
}

export const live = new LiveHub('/api/v1/events/stream');

// ---------------------------------------------------------------------------------------------
// API client

export class ApiError extends Error {
  constructor(status, body, headers) {
    const message = body && typeof body === 'object' && body.message
      ? body.message
      : `${status} ${typeof body === 'string' && body ? body.slice(0, 200) : 'request failed'}`;
    super(message);
    this.status = status;
    this.code = body?.error || null;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
    this.body = body;
    const retry = headers?.get('Retry-After');
    this.retryAfter = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Call the device API. opts.body: an object (sent as JSON) or a string with opts.contentType;
 * opts.auth: true for the session/setup calls themselves (a 401 is the answer, not a reason to
 * leave the page); opts.headers: extra headers. Resolves to the parsed JSON (or text, or null
 * for 204); rejects with an ApiError.
 */
export async function api(method, path, opts = {}) {
  const headers = {
    Accept: 'application/json',
    // Tells the device this is the web interface: answer 401 without a WWW-Authenticate
    // challenge, so the browser never shows its own password prompt.
    'X-Requested-With': 'XMLHttpRequest',
    ...(opts.headers || {}),
  };
  let body;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string') {
      body = opts.body;
      headers['Content-Type'] = opts.contentType || 'text/plain';
    } else {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
  }
  if (UNSAFE.has(method) && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    const error = new ApiError(0, { error: 'network', message: 'The device cannot be reached. Check the network connection.' });
    error.cause = err;
    throw error;
  }
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (res.status !== 204 && res.status !== 304) {
    data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  }
  if (res.ok) return data;
  if (res.status === 403 && UNSAFE.has(method) && !opts.retried && isCsrfRefusal(data)) {
    // The session was renewed elsewhere (another tab changed the password): take the new
    // token and try once more.
    try {
      const fresh = await api('GET', '/api/v1/session', { auth: true });
      if (fresh?.csrf_token) {
        session.csrf = fresh.csrf_token;
        return api(method, path, { ...opts, retried: true });
      }
    } catch { /* fall through to the original refusal */ }
  }
  const error = new ApiError(res.status, data, res.headers);
  if (res.status === 401 && !opts.auth) {
    sessionEnded();
  }
  throw error;
}

function isCsrfRefusal(body) {
  return body?.error === 'csrf' || /csrf/i.test(body?.message || '');
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body, opts = {}) => api('POST', path, { ...opts, body });
export const put = (path, body, opts = {}) => api('PUT', path, { ...opts, body });
export const patch = (path, body, opts = {}) => api('PATCH', path, { ...opts, body });
export const del = (path, opts) => api('DELETE', path, opts);

/** Report a failed action to the user (toast), unless the session ended (we are leaving). */
export function reportError(err, what = '') {
  if (err?.status === 401) return;
  toast(`${what ? `${what}: ` : ''}${err?.message || err}`, 'error');
}

// ---------------------------------------------------------------------------------------------
// Session lifecycle

export function setSession(data) {
  session.user = data.user;
  session.csrf = data.csrf_token ?? session.csrf;
  updateShell();
  live.start();
  loadDevice();
}

function clearSession() {
  session.user = null;
  session.csrf = null;
  live.stop();
  updateShell();
}

let leaving = false;
/** The API said 401: forget the session and go to the login (or setup) page. */
function sessionEnded() {
  if (!session.user || leaving) return;
  leaving = true;
  const next = currentRoute().name;
  clearSession();
  toast('Your session has ended. Please sign in again.', 'info');
  goToLogin(next).finally(() => { leaving = false; });
}

export async function logout() {
  try {
    await del('/api/v1/session', { auth: true });
  } catch (err) {
    if (err.status !== 401) reportError(err, 'Log out');
  }
  clearSession();
  navigate('#/login');
}

async function goToLogin(next) {
  let needed = false;
  try {
    needed = (await get('/api/v1/setup', { auth: true }))?.needed === true;
  } catch { /* the login page will say what is wrong */ }
  const suffix = next && !['login', 'setup'].includes(next) ? `?next=${encodeURIComponent(next)}` : '';
  navigate(needed ? '#/setup' : `#/login${suffix}`);
}

async function loadDevice() {
  try {
    session.device = await get('/api/v1/device');
  } catch {
    session.device = null;
  }
  updateShell();
}

/** After a page changed the device identity. */
export function refreshDevice() {
  return loadDevice();
}

// ---------------------------------------------------------------------------------------------
// Router

const ROUTES = {
  live: { title: 'Live I/O', load: () => import('./pages/live.js') },
  inputs: { title: 'Alarm in', load: () => import('./pages/inputs.js') },
  outputs: { title: 'Alarm out', load: () => import('./pages/outputs.js') },
  rules: { title: 'Rules', load: () => import('./pages/rules.js') },
  schedules: { title: 'Schedules', load: () => import('./pages/schedules.js') },
  events: { title: 'Event log', load: () => import('./pages/events.js') },
  media: { title: 'Media', load: () => import('./pages/media.js') },
  recipients: { title: 'Recipients', load: () => import('./pages/recipients.js') },
  users: { title: 'Users', load: () => import('./pages/users.js') },
  system: { title: 'System', load: () => import('./pages/system.js') },
  login: { title: 'Sign in', load: () => import('./pages/login.js'), public: true },
  setup: { title: 'Set up', load: () => import('./pages/setup.js'), public: true },
};
const DEFAULT_ROUTE = 'live';

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [name, qs = ''] = raw.split('?');
  return { name: name || '', query: new URLSearchParams(qs) };
}

let current = null; // { seq, cleanups } of the page on screen
let routeSeq = 0;

async function route() {
  const { name, query } = currentRoute();
  const spec = ROUTES[name];
  if (!spec) {
    navigate(`#/${session.user ? DEFAULT_ROUTE : 'login'}`);
    return;
  }
  if (!spec.public && !session.user) {
    await goToLogin(name);
    return;
  }
  if (spec.public && session.user) {
    navigate(`#/${DEFAULT_ROUTE}`);
    return;
  }
  const seq = ++routeSeq;
  teardown();
  const cleanups = [];
  current = { seq, cleanups };
  document.body.classList.toggle('bare', Boolean(spec.public));
  markNav(name);
  closeNav();
  document.title = `${spec.title} · ${session.device?.name || 'camio'}`;
  const main = document.getElementById('main');
  main.replaceChildren(spinner());
  main.setAttribute('aria-busy', 'true');
  const ctx = {
    query,
    route: name,
    /** False once the user has left the page (skip late updates). */
    alive: () => routeSeq === seq,
    onCleanup: (fn) => cleanups.push(fn),
    /** Subscribe to live events for as long as the page is shown. */
    subscribe: (fn) => cleanups.push(live.on(fn)),
    onLiveStatus: (fn) => cleanups.push(live.onStatus(fn)),
    every: (ms, fn) => { const t = setInterval(fn, ms); cleanups.push(() => clearInterval(t)); },
    rerender: () => route(),
  };
  try {
    const mod = await spec.load();
    if (!ctx.alive()) return;
    const root = h('div', { class: `page page-${name}` });
    await mod.render(root, ctx);
    if (!ctx.alive()) return;
    main.replaceChildren(root);
  } catch (err) {
    if (!ctx.alive() || err?.status === 401) return;
    console.error(err);
    main.replaceChildren(errorPanel(err, () => route()));
  } finally {
    if (ctx.alive()) main.removeAttribute('aria-busy');
  }
  if (navigatedByUser) {
    const heading = main.querySelector('h1');
    (heading || main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  navigatedByUser = true;
}

let navigatedByUser = false;

function teardown() {
  if (!current) return;
  for (const fn of current.cleanups.splice(0)) {
    try { fn(); } catch (err) { console.error(err); }
  }
  for (const dlg of document.querySelectorAll('dialog[open]')) dlg.close();
  current = null;
}

// ---------------------------------------------------------------------------------------------
// Shell: navigation, live indicator, user box

function markNav(name) {
  for (const link of document.querySelectorAll('#nav a[data-route]')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function closeNav() {
  const nav = document.getElementById('nav');
  const toggle = document.getElementById('nav-toggle');
  nav?.classList.remove('open');
  toggle?.setAttribute('aria-expanded', 'false');
  document.body.classList.remove('nav-open');
}

function updateShell() {
  const device = session.device;
  const name = document.getElementById('device-name');
  if (name) name.textContent = device ? device.name : '';
  const model = document.getElementById('device-model');
  if (model) model.textContent = device ? `${device.model} · ${device.serial}` : '';
  const who = document.getElementById('whoami-name');
  const role = document.getElementById('whoami-role');
  if (who) who.textContent = session.user?.name || '';
  if (role) role.textContent = session.user?.role || '';
  const spec = ROUTES[currentRoute().name];
  if (spec) document.title = `${spec.title} · ${device?.name || 'camio'}`;
}

function wireShell() {
  const toggle = document.getElementById('nav-toggle');
  const nav = document.getElementById('nav');
  toggle.addEventListener('click', () => {
    const open = !nav.classList.contains('open');
    nav.classList.toggle('open', open);
    document.body.classList.toggle('nav-open', open);
    toggle.setAttribute('aria-expanded', String(open));
    if (open) nav.querySelector('a')?.focus();
  });
  document.getElementById('nav-scrim').addEventListener('click', closeNav);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && nav.classList.contains('open')) { closeNav(); toggle.focus(); }
  });
  document.getElementById('logout').addEventListener('click', logout);

  const conn = document.getElementById('conn');
  const connText = document.getElementById('conn-text');
  const labels = { off: 'Offline', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };
  let countdown = null;
  live.onStatus((status, retryAt) => {
    conn.dataset.status = status;
    clearInterval(countdown);
    const paint = () => {
      const left = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
      connText.textContent = status === 'reconnecting' && left ? `Reconnecting in ${left} s` : labels[status];
    };
    paint();
    if (status === 'reconnecting' && retryAt) countdown = setInterval(paint, 1000);
  });
  // Back online after an outage: a page that failed to load meanwhile tries again.
  let wasLive = false;
  live.onStatus((status) => {
    if (status === 'live' && !wasLive && document.querySelector('#main > .page-error')) route();
    wasLive = status === 'live';
  });
  conn.addEventListener('click', () => live.retryNow());
  window.addEventListener('online', () => live.retryNow());
  // A WebSocket refused at the handshake may mean the session ended: ask the API.
  live.onRefused = () => {
    if (session.user) get('/api/v1/session', { auth: true }).catch((err) => { if (err.status === 401) sessionEnded(); });
  };
}

async function boot() {
  wireShell();
  try {
    setSession(await get('/api/v1/session', { auth: true }));
  } catch (err) {
    if (err.status !== 401) console.warn('session check failed', err);
  }
  window.addEventListener('hashchange', route);
  await route();
}

boot();
