// Small DOM and formatting helpers shared by every page. No framework: elements are built with
// h(), never from HTML strings, so nothing the device or a user typed can become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Build an element. props: class, text, dataset, on<Event> handlers, boolean/value properties,
 * any other key becomes an attribute (aria-*, for, role, ...). Children: nodes, strings,
 * numbers, arrays; null/undefined/false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const PROPERTIES = new Set([
  'value', 'checked', 'disabled', 'hidden', 'selected', 'required', 'readOnly', 'multiple',
  'open', 'indeterminate', 'tabIndex', 'htmlFor',
]);

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false && !PROPERTIES.has(key)) continue;
    if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

/** Replace the children of el (null/false children are skipped, unlike replaceChildren). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An icon from the sprite in index.html (decorative: hidden from assistive technology). */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', `icon ${cls}`.trim());
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

let idCounter = 0;
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms === 0) return '0 ms';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${trim(ms / 1000)} s`;
  if (ms < 3_600_000) return `${trim(ms / 60_000)} min`;
  return `${trim(ms / 3_600_000)} h`;
}

function trim(n) {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 1 : 0).replace(/\.0$/, '');
}

export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${s % 60} s`;
  return `${s % 60} s`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** A wall time as the browser's local time; today's times without the date. */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

export function timeEl(iso) {
  return h('time', { datetime: iso, title: iso, text: fmtTime(iso) });
}

/** A cause in words: "rule door (event #42)", "manual by admin", "timer: alarm time elapsed". */
export function fmtCause(cause) {
  if (!cause) return '—';
  const { kind, rule, user, client, event_id: eventId, detail } = cause;
  const ev = eventId !== undefined && eventId !== null ? ` (event #${eventId})` : '';
  switch (kind) {
    case 'rule':
      return `rule ${rule}${detail === 'fallback' ? ' fallback' : ''}${ev}`;
    case 'timer': {
      const origin = rule ? `, started by rule ${rule}` : user ? `, started by ${user}` : '';
      return `timer: ${detail || 'time elapsed'}${origin}`;
    }
    case 'manual':
      return `manual by ${user || 'unknown'}${client ? ` from ${client}` : ''}`;
    case 'api':
      return `API by ${user || 'unknown'}${client ? ` from ${client}` : ''}`;
    case 'boot':
      return detail ? `start-up: ${detail}` : 'start-up';
    case 'interlock':
      return `interlock${detail ? `: ${detail}` : ''}`;
    case 'schedule':
      return detail ? `schedule ${detail}` : 'schedule';
    case 'sequence':
      return user ? `state sequence by ${user}` : 'state sequence';
    case 'config':
      return detail ? `configuration: ${detail}` : 'configuration change';
    case 'sim':
      return 'simulator';
    case 'hardware':
      return 'wiring';
    case 'shutdown':
      return 'shutdown';
    default:
      return [kind, rule, user, detail].filter(Boolean).join(' ') + ev;
  }
}

/** "in1" -> "Input 1" style label from a port list. */
export function portLabel(ports, id) {
  const port = ports.find((p) => p.id === id);
  return port ? port.name : id;
}

export function slugify(text, taken = []) {
  let base = String(text).normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 28) || 'item';
  let candidate = base;
  let n = 2;
  while (taken.includes(candidate)) {
    candidate = `${base}-${n}`;
    n += 1;
  }
  return candidate;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

export function badge(text, tone = 'muted', extra = {}) {
  return h('span', { class: `badge badge-${tone}`, ...extra }, text);
}

export function lamp(tone, label) {
  return h('span', { class: `lamp lamp-${tone}`, role: 'img', 'aria-label': label, title: label });
}

export function button(label, props = {}, iconName = null) {
  const { variant = 'secondary', size = '', ...rest } = props;
  return h('button', { type: 'button', class: ['btn', `btn-${variant}`, size && `btn-${size}`], ...rest },
    iconName ? icon(iconName) : null, h('span', { text: label }));
}

export function pageHeader(title, description, ...actions) {
  return h('header', { class: 'page-header' },
    h('div', { class: 'page-title' },
      h('h1', { tabindex: '-1', text: title }),
      description ? h('p', { class: 'page-desc', text: description }) : null),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

export function card(title, ...children) {
  return h('section', { class: 'card' },
    title ? h('h2', { class: 'card-title', text: title }) : null, children);
}

export function empty(text, ...extra) {
  return h('div', { class: 'empty' }, h('p', { text }), extra);
}

export function spinner(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { text: label }));
}

export function errorPanel(error, retry) {
  return h('div', { class: 'alert alert-error page-error', role: 'alert' },
    icon('alert'),
    h('div', {}, h('strong', { text: 'Could not load this page. ' }), h('span', { text: error?.message || String(error) })),
    retry ? button('Retry', { size: 'sm', onclick: retry }) : null);
}

/** Disable a button (and show it busy) while an async action runs. */
export async function busy(btn, fn) {
  if (!btn) return fn();
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// Forms

/**
 * A labelled form field. opts: label, name (the API field, used to place errors), type,
 * value, hint, options [{value,label}] for select, attrs (extra attributes for the control).
 * Returns the wrapper; wrapper.control is the input/select/textarea.
 */
export function field(opts) {
  const { label, name, type = 'text', value, hint, options, attrs = {}, wide = false } = opts;
  const id = uid(name ? name.replace(/[^a-z0-9]/gi, '-') : 'f');
  const hintId = hint ? `${id}-hint` : null;
  const errId = `${id}-err`;
  let control;
  if (type === 'select') {
    control = h('select', { id, name, ...attrs },
      (options || []).map((o) => h('option', { value: o.value, text: o.label, selected: String(o.value) === String(value ?? '') })));
  } else if (type === 'textarea') {
    control = h('textarea', { id, name, ...attrs });
    control.value = value ?? '';
  } else {
    control = h('input', { id, name, type, ...attrs });
    if (value !== undefined && value !== null) control.value = value;
  }
  control.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  const wrap = h('div', { class: ['field', wide && 'field-wide'], dataset: name ? { field: name } : {} },
    h('label', { for: id, text: label }),
    control,
    hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null,
    h('p', { class: 'field-error', id: errId, hidden: true }));
  wrap.control = control;
  clearOnEdit(wrap);
  return wrap;
}

/** A checkbox styled as a switch, with its label on the right. */
export function toggle(opts) {
  const { label, name, checked = false, hint, attrs = {} } = opts;
  const id = uid(name || 't');
  const hintId = hint ? `${id}-hint` : null;
  const control = h('input', { id, name, type: 'checkbox', role: 'switch', class: 'switch-input', checked, ...attrs });
  if (hintId) control.setAttribute('aria-describedby', `${hintId} ${id}-err`);
  else control.setAttribute('aria-describedby', `${id}-err`);
  const wrap = h('div', { class: 'field field-toggle', dataset: name ? { field: name } : {} },
    h('label', { class: 'switch', for: id }, control, h('span', { class: 'switch-track', 'aria-hidden': 'true' }), h('span', { class: 'switch-label', text: label })),
    hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null,
    h('p', { class: 'field-error', id: `${id}-err`, hidden: true }));
  wrap.control = control;
  clearOnEdit(wrap);
  return wrap;
}

/** A group of radio buttons shown as a segmented choice (fieldset + legend). */
export function choice(opts) {
  const { label, name, value, options, hint, onchange } = opts;
  const group = uid(name || 'c');
  const hintId = hint ? `${group}-hint` : null;
  const inputs = [];
  const fs = h('fieldset', { class: 'field choice', dataset: name ? { field: name } : {} },
    h('legend', { text: label }),
    h('div', { class: 'choice-options' }, options.map((o) => {
      const id = uid(group);
      const input = h('input', { type: 'radio', id, name: group, value: o.value, checked: String(o.value) === String(value) });
      if (onchange) input.addEventListener('change', () => onchange(o.value));
      inputs.push(input);
      return h('label', { class: 'choice-option', for: id }, input,
        h('span', { class: 'choice-text' }, h('span', { class: 'choice-title', text: o.label }),
          o.hint ? h('span', { class: 'choice-hint', text: o.hint }) : null));
    })),
    hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null,
    h('p', { class: 'field-error', hidden: true }));
  fs.inputs = inputs;
  Object.defineProperty(fs, 'value', {
    get: () => inputs.find((i) => i.checked)?.value,
    set: (v) => inputs.forEach((i) => { i.checked = i.value === String(v); }),
  });
  return fs;
}

export function intValue(control) {
  const raw = control.value.trim();
  if (raw === '') return null;
  const n = Number(raw);
  return Number.isFinite(n) ? Math.round(n) : NaN;
}

/** Take back the message beside one field: its value changed, so the message is stale. */
export function clearFieldError(wrap) {
  const err = wrap.querySelector(':scope > .field-error');
  if (err) { err.hidden = true; err.textContent = ''; }
  wrap.classList.remove('has-error');
  wrap.control?.removeAttribute('aria-invalid');
}

function clearOnEdit(wrap) {
  const clear = () => clearFieldError(wrap);
  wrap.control.addEventListener('input', clear);
  wrap.control.addEventListener('change', clear);
}

export function clearErrors(root) {
  root.querySelectorAll('.field-error').forEach((el) => { el.hidden = true; el.textContent = ''; });
  root.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  root.querySelectorAll('.field.has-error').forEach((el) => el.classList.remove('has-error'));
  root.querySelectorAll('.form-error').forEach((el) => { el.hidden = true; el.replaceChildren(); });
}

/**
 * Show an API error inside a form: each {field, message} beside the element whose data-field
 * matches (or its nearest named ancestor path), the rest in the form's .form-error box.
 * mapField(field) may rewrite API paths ("rules.3.action.port" -> "action.port").
 */
export function showErrors(root, error, { mapField = (f) => f } = {}) {
  clearErrors(root);
  const summary = root.querySelector('.form-error');
  const leftovers = [];
  let items = error?.errors?.length ? error.errors : [];
  if (!items.length) {
    // "new_password: too short" names its field in the message.
    const located = /^([a-z_][\w.]*): (.+)$/is.exec(error?.message || '');
    if (located && findField(root, mapField(located[1]))) items = [{ field: located[1], message: located[2] }];
  }
  let first = null;
  for (const item of items) {
    let path = mapField(String(item.field || ''));
    let message = item.message;
    // "conditions.0" + "port: Field required" -> "conditions.0.port" + "Field required"
    const located = /^([a-z_][\w.]*): (.+)$/is.exec(message || '');
    if (located && path && !path.endsWith(located[1])) {
      const deeper = `${path}.${located[1]}`;
      if (findField(root, deeper, true)) { path = deeper; message = located[2]; }
    }
    const target = path ? findField(root, path) : null;
    if (!target) { leftovers.push(path && path !== '(document)' ? `${path}: ${message}` : message); continue; }
    const err = target.querySelector(':scope > .field-error');
    if (err && !err.hidden) err.textContent += ` ${message}`;
    else if (err) { err.textContent = message; err.hidden = false; }
    target.classList.add('has-error');
    const control = target.control || target.querySelector('input, select, textarea');
    if (control) { control.setAttribute('aria-invalid', 'true'); first ??= control; }
  }
  if (!items.length) leftovers.push(error?.message || String(error));
  if (summary && leftovers.length) {
    summary.hidden = false;
    summary.append(icon('alert'), h('div', {}, leftovers.map((m) => h('p', { text: m }))));
    first ??= summary;
  } else if (leftovers.length) {
    toast(leftovers.join('; '), 'error');
  }
  if (first) {
    if (first === summary) summary.setAttribute('tabindex', '-1');
    first.focus({ preventScroll: true });
    // Bring the whole field into view, its message included.
    (first === summary ? summary : first.closest('[data-field]') || first).scrollIntoView({ block: 'nearest' });
  }
}

function findField(root, path, exact = false) {
  let p = path;
  while (p) {
    const el = root.querySelector(`[data-field="${CSS.escape(p)}"]`);
    if (el) return el;
    if (exact) return null;
    const cut = p.lastIndexOf('.');
    if (cut < 0) return null;
    p = p.slice(0, cut);
  }
  return null;
}

export function formError() {
  return h('div', { class: 'alert alert-error form-error', role: 'alert', hidden: true });
}

// ---------------------------------------------------------------------------------------------
// Dialogs, drawers, toasts

/**
 * A modal <dialog>. content: nodes; actions: buttons (a button with data-close closes it).
 * Returns {dialog, close}. The dialog removes itself when closed.
 */
/**
 * A dialog editing ``form`` (which must have an id): its body is the form, its footer
 * ``extra`` actions, Cancel and a primary button that submits the form. Returns the dialog's
 * ``close`` and the submit button (for ``busy``).
 */
export function formDialog({ title, form, saveText = 'Save', extra = [], drawer = false, wide = false, onClose }) {
  const save = button(saveText, { type: 'submit', variant: 'primary', form: form.getAttribute('id') });
  const { close } = modal({
    title, drawer, wide, onClose, content: form,
    actions: [...extra, button('Cancel', { dataset: { close: 'cancel' } }), save],
  });
  return { close, save };
}

export function modal({ title, content, actions = [], drawer = false, wide = false, onClose }) {
  const titleId = uid('dlg');
  const closeBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-icon dialog-x', 'aria-label': 'Close' }, icon('close'));
  const dialog = h('dialog', { class: ['dialog', drawer && 'drawer', wide && 'dialog-wide'], 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' }, h('h2', { id: titleId, text: title }), closeBtn),
    h('div', { class: 'dialog-body' }, content),
    actions.length ? h('div', { class: 'dialog-foot' }, actions) : null);
  const close = (value) => { if (dialog.open) dialog.close(value ?? ''); };
  closeBtn.addEventListener('click', () => close('cancel'));
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) close('cancel'); // a click on the backdrop
    const closer = e.target.closest('[data-close]');
    if (closer) close(closer.dataset.close);
  });
  dialog.addEventListener('close', () => { onClose?.(dialog.returnValue); dialog.remove(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/** Ask a yes/no question; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const ok = button(confirmLabel, { variant: danger ? 'danger' : 'primary', dataset: { close: 'ok' } });
    const cancel = button('Cancel', { variant: 'secondary', dataset: { close: 'cancel' } });
    modal({
      title,
      content: Array.isArray(message) ? message : h('p', { text: message }),
      actions: [cancel, ok],
      onClose: (value) => resolve(value === 'ok'),
    });
    cancel.focus();
  });
}

let toastRoot = null;
export function toast(message, tone = 'info', ms = 4500) {
  toastRoot ??= document.getElementById('toasts');
  if (!toastRoot) return;
  const item = h('div', { class: `toast toast-${tone}` },
    icon(tone === 'error' ? 'alert' : tone === 'success' ? 'check' : 'info'),
    h('span', { text: message }),
    h('button', { type: 'button', class: 'toast-x', 'aria-label': 'Dismiss', onclick: () => item.remove() }, icon('close')));
  while (toastRoot.children.length >= 4) toastRoot.firstElementChild.remove();
  toastRoot.append(item);
  setTimeout(() => item.remove(), tone === 'error' ? ms * 2 : ms);
}

/** Make a table stack into labelled cards on narrow screens (CSS reads data-label). */
export function table({ columns, rows, caption, className = '' }) {
  const thead = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label }))));
  const tbody = h('tbody', {}, rows);
  return h('div', { class: 'table-wrap' },
    h('table', { class: `table table-stack ${className}`.trim() },
      caption ? h('caption', { class: 'sr-only', text: caption }) : null, thead, tbody));
}

export function td(label, content, cls = '') {
  // One wrapper, so a stacked (phone) row lays out as label | content.
  return h('td', { 'data-label': label, class: cls }, h('div', { class: 'td-c' }, content));
}
