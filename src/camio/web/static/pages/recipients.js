// Recipients: where notifications go (e-mail, FTP, SFTP, HTTP, TCP, a network share), each with
// its delivery state from the outbox, a Test button that shows the device's exact answer, and
// a form per kind. Secrets are write-only: the device answers "********" where one is stored,
// and sending that placeholder back keeps it, so the form never holds a stored password.

import { can, del, get, post, put, reportError, toast } from '../app.js';
import {
  badge, busy, button, confirmDialog, empty, field, fill, fmtTime, formDialog, formError, h, icon, modal, pageHeader, showErrors, slugify, table, td, toggle, uid,
} from '../lib/ui.js';

const PLACEHOLDER = '********';

// Each kind's fields (the configuration models in src/camio/recipients/): name, label, type
// (text, number, password, select, bool, lines: one per line, headers: "Name: value" lines,
// json: an object, textarea), default, required, hint.
const KINDS = {
  email: {
    label: 'E-mail (SMTP)',
    target: (r) => `${(r.to || []).join(', ')} via ${r.host}:${r.port}`,
    fields: [
      { name: 'host', label: 'SMTP server', required: true },
      { name: 'port', label: 'Port', type: 'number', value: 587 },
      { name: 'security', label: 'Security', type: 'select', value: 'starttls', options: ['starttls', 'tls', 'none'] },
      { name: 'username', label: 'User name', hint: 'Empty: no login.' },
      { name: 'password', label: 'Password', type: 'password' },
      { name: 'from_address', label: 'From', required: true, hint: 'camera@example.com' },
      { name: 'to', label: 'To', type: 'lines', required: true, hint: 'One address per line.' },
      { name: 'verify_certificate', label: 'Check the server certificate', type: 'bool', value: true },
      { name: 'ca_file', label: 'CA file', hint: 'A PEM bundle on the device to trust instead of the system’s.' },
      { name: 'timeout', label: 'Timeout (s)', type: 'number', value: 30, step: 'any' },
    ],
  },
  ftp: {
    label: 'FTP',
    target: (r) => `ftp://${r.host}:${r.port}/${r.directory || ''}`,
    fields: [
      { name: 'host', label: 'Server', required: true },
      { name: 'port', label: 'Port', type: 'number', value: 21 },
      { name: 'username', label: 'User name', value: 'anonymous' },
      { name: 'password', label: 'Password', type: 'password' },
      { name: 'directory', label: 'Directory', hint: 'A template: {device.name}/{date}' },
      { name: 'passive', label: 'Passive mode', type: 'bool', value: true },
      { name: 'tls', label: 'Explicit FTPS (TLS)', type: 'bool', value: false },
      { name: 'verify_certificate', label: 'Check the server certificate', type: 'bool', value: true },
      { name: 'ca_file', label: 'CA file' },
      { name: 'timeout', label: 'Timeout (s)', type: 'number', value: 30, step: 'any' },
    ],
  },
  sftp: {
    label: 'SFTP',
    target: (r) => `sftp://${r.username}@${r.host}:${r.port}/${r.directory || ''}`,
    fields: [
      { name: 'host', label: 'Server', required: true },
      { name: 'port', label: 'Port', type: 'number', value: 22 },
      { name: 'username', label: 'User name', required: true },
      { name: 'password', label: 'Password', type: 'password' },
      { name: 'private_key', label: 'Private key (OpenSSH)', type: 'password', textarea: true },
      { name: 'private_key_passphrase', label: 'Key passphrase', type: 'password' },
      { name: 'host_key', label: 'Server host key', type: 'textarea', hint: 'ssh-ed25519 AAAA… (or known_hosts below)' },
      { name: 'known_hosts', label: 'known_hosts file' },
      { name: 'insecure_skip_host_key', label: 'Do not check the host key (insecure)', type: 'bool', value: false },
      { name: 'directory', label: 'Directory', hint: 'A template: {device.name}/{date}' },
      { name: 'timeout', label: 'Timeout (s)', type: 'number', value: 30, step: 'any' },
    ],
  },
  http: {
    label: 'HTTP(S) webhook',
    target: (r) => `${r.method} ${r.url}`,
    fields: [
      { name: 'url', label: 'URL', required: true, hint: 'A template, e.g. …/alarm?cam={device.name}' },
      { name: 'method', label: 'Method', type: 'select', value: 'POST', options: ['POST', 'GET'] },
      { name: 'headers', label: 'Headers', type: 'headers', hint: 'One “Name: value” per line.' },
      { name: 'body', label: 'JSON body template', type: 'json', hint: 'An object; empty: subject, message, key and the event.' },
      { name: 'auth', label: 'Authentication', type: 'select', value: 'none', options: ['none', 'basic', 'digest'] },
      { name: 'username', label: 'User name' },
      { name: 'password', label: 'Password', type: 'password' },
      { name: 'verify_tls', label: 'Check the server certificate', type: 'bool', value: true },
      { name: 'ca_file', label: 'CA file' },
      { name: 'timeout_s', label: 'Timeout (s)', type: 'number', value: 10, step: 'any' },
    ],
  },
  tcp: {
    label: 'TCP (a line of text)',
    target: (r) => `${r.tls ? 'tls' : 'tcp'}://${r.host}:${r.port}`,
    fields: [
      { name: 'host', label: 'Host', required: true },
      { name: 'port', label: 'Port', type: 'number', required: true },
      { name: 'line', label: 'Line', value: '{key} {event.topic} {event.source} {subject}', hint: 'A template; a newline is added.' },
      { name: 'tls', label: 'TLS', type: 'bool', value: false },
      { name: 'verify_tls', label: 'Check the server certificate', type: 'bool', value: true },
      { name: 'ca_file', label: 'CA file' },
      { name: 'timeout_s', label: 'Timeout (s)', type: 'number', value: 10, step: 'any' },
    ],
  },
  share: {
    label: 'Network share',
    target: (r) => `${r.path}/${r.directory || ''}`,
    fields: [
      { name: 'path', label: 'Mounted path', required: true, hint: 'A directory the administrator mounted, e.g. /mnt/nas' },
      { name: 'directory', label: 'Directory', hint: 'A template: {device.name}/{event.source}' },
      { name: 'min_free_mb', label: 'Keep free (MB)', type: 'number', value: 64 },
    ],
  },
};

const STATE_TONE = { ok: 'ok', retrying: 'warn', failing: 'alarm' };

function kindLabel(kind) { return KINDS[kind]?.label ?? kind; }

function targetOf(r) {
  try { return KINDS[r.kind]?.target(r) ?? ''; } catch { return ''; }
}

function nsTime(ns) { return ns ? fmtTime(new Date(ns / 1e6).toISOString()) : ''; }

// ---------------------------------------------------------------------------------------------
// Form controls for one field, and reading them back

function control(def, current, editing) {
  const stored = current?.[def.name];
  const attrs = def.required ? { required: true } : {};
  if (def.type === 'bool') {
    return toggle({ label: def.label, name: def.name, checked: stored ?? def.value ?? false, hint: def.hint });
  }
  if (def.type === 'select') {
    return field({ label: def.label, name: def.name, type: 'select', value: stored ?? def.value, options: def.options.map((o) => ({ value: o, label: o })), hint: def.hint });
  }
  if (def.type === 'password') {
    const isStored = editing && stored === PLACEHOLDER;
    const hint = isStored ? 'A value is stored: leave empty to keep it.' : def.hint;
    const opts = { label: def.label, name: def.name, hint, attrs: { autocomplete: 'new-password', placeholder: isStored ? PLACEHOLDER : '' } };
    const wrap = def.textarea ? field({ ...opts, type: 'textarea', wide: true }) : field({ ...opts, type: 'password' });
    wrap.storedSecret = isStored;
    return wrap;
  }
  let value = stored ?? def.value ?? '';
  if (def.type === 'lines') value = (stored || []).join('\n');
  else if (def.type === 'headers') value = Object.entries(stored || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
  else if (def.type === 'json') value = stored ? JSON.stringify(stored, null, 2) : '';
  const multi = ['lines', 'headers', 'json', 'textarea'].includes(def.type);
  if (multi) return field({ label: def.label, name: def.name, type: 'textarea', value, hint: def.hint, wide: true, attrs: { ...attrs, rows: def.type === 'json' ? 5 : 3, spellcheck: 'false' } });
  if (def.type === 'number') return field({ label: def.label, name: def.name, type: 'number', value, hint: def.hint, attrs: { ...attrs, step: def.step || '1' } });
  return field({ label: def.label, name: def.name, value, hint: def.hint, attrs: { ...attrs, spellcheck: 'false', autocapitalize: 'none' } });
}

/** The field values as the API wants them; problems are {field, message} for showErrors. */
function readFields(defs, wraps, problems) {
  const out = {};
  for (const def of defs) {
    const wrap = wraps[def.name];
    const c = wrap.control;
    if (def.type === 'bool') { out[def.name] = c.checked; continue; }
    const raw = c.value;
    const text = raw.trim();
    if (def.type === 'password') {
      if (raw) out[def.name] = raw;
      else if (wrap.storedSecret) out[def.name] = PLACEHOLDER;
      continue;
    }
    if (!text) {
      if (def.required) problems.push({ field: def.name, message: 'Required.' });
      continue; // the device's default (or none)
    }
    if (def.type === 'number') {
      const n = Number(text);
      if (!Number.isFinite(n)) problems.push({ field: def.name, message: 'Enter a number.' });
      else out[def.name] = n;
    } else if (def.type === 'lines') {
      out[def.name] = text.split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);
    } else if (def.type === 'headers') {
      const headers = {};
      for (const line of text.split('\n').map((s) => s.trim()).filter(Boolean)) {
        const cut = line.indexOf(':');
        if (cut <= 0) { problems.push({ field: def.name, message: `“${line}” is not “Name: value”.` }); break; }
        headers[line.slice(0, cut).trim()] = line.slice(cut + 1).trim();
      }
      out[def.name] = headers;
    } else if (def.type === 'json') {
      try {
        const parsed = JSON.parse(text);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        out[def.name] = parsed;
      } catch { problems.push({ field: def.name, message: 'Enter a JSON object, e.g. {"text": "{subject}"}.' }); }
    } else {
      out[def.name] = text;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Page

export async function render(root) {
  const admin = can('admin');
  const operator = can('operator');
  const listBox = h('div');
  const queueBox = h('div');
  let recipients = [];

  root.append(pageHeader('Recipients',
    'Where notify actions send: configured once, used by any number of rules. Deliveries wait in a durable outbox and are retried until they arrive or expire.',
    button('Refresh', { onclick: () => load().catch((e) => reportError(e)) }, 'refresh'),
    admin ? button('Add recipient', { variant: 'primary', onclick: () => edit(null) }, 'plus') : null));

  async function load() {
    const [list, outbox] = await Promise.all([get('/api/v1/recipients'), get('/api/v1/outbox')]);
    recipients = list.recipients;
    const states = Object.fromEntries(outbox.recipients.map((s) => [s.recipient, s]));
    paint(states, outbox.deliveries);
  }

  function paint(states, deliveries) {
    if (!recipients.length) {
      fill(listBox, empty(admin ? 'No recipient yet. Add one, then use it in a rule’s notify action.' : 'No recipient is configured.'));
    } else {
      const rows = recipients.map((r) => {
        const st = states[r.id] || r.status || { state: 'ok' };
        const since = st.since_wall_ns ? ` since ${nsTime(st.since_wall_ns)}` : '';
        return h('tr', { dataset: { recipient: r.id } },
          td('Recipient', h('div', {}, h('strong', { text: r.name }), h('div', { class: 'muted small', text: r.id }))),
          td('Kind', h('span', {}, kindLabel(r.kind), r.enabled ? null : h('span', {}, ' ', badge('disabled', 'muted')))),
          td('Target', h('span', { class: 'small', text: targetOf(r) })),
          td('State', h('div', { class: 'recipient-state' },
            badge(st.state, STATE_TONE[st.state] || 'muted', { dataset: { state: st.state } }),
            since ? h('span', { class: 'muted small', text: since }) : null,
            st.pending ? h('div', { class: 'small', text: `${st.pending} waiting` }) : null,
            st.last_error && st.state !== 'ok' ? h('div', { class: 'small', text: st.last_error }) : null)),
          td('', h('div', { class: 'btn-group' },
            operator ? button('Test', { size: 'sm', onclick: (e) => test(r, e.currentTarget) }, 'target') : null,
            admin ? button('Edit', { size: 'sm', onclick: () => edit(r) }, 'edit') : null,
            admin ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', 'aria-label': `Delete recipient ${r.name}`, title: 'Delete', onclick: () => remove(r) }, icon('trash')) : null), 'actions'));
      });
      fill(listBox, table({ caption: 'Recipients', columns: [{ label: 'Recipient' }, { label: 'Kind' }, { label: 'Target' }, { label: 'State' }, { label: '', class: 'actions' }], rows }));
    }
    if (!deliveries.length) {
      fill(queueBox, empty('No delivery is waiting, retrying or given up.'));
    } else {
      const rows = deliveries.map((d) => h('tr', {},
        td('Recipient', d.recipient),
        td('Subject', d.subject),
        td('State', badge(d.state, d.state === 'retrying' || d.state === 'queued' ? 'warn' : 'alarm')),
        td('Attempts', String(d.attempts)),
        td('Queued', h('span', { class: 'nowrap', text: nsTime(d.created_wall_ns) })),
        td('Last error', h('span', { class: 'small', text: d.last_error || '' }))));
      fill(queueBox, table({ caption: 'Deliveries not delivered', columns: ['Recipient', 'Subject', 'State', 'Attempts', 'Queued', 'Last error'].map((label) => ({ label })), rows }));
    }
  }

  async function test(r, btn) {
    await busy(btn, async () => {
      try {
        const res = await post(`/api/v1/recipients/${encodeURIComponent(r.id)}/test`, {});
        const box = h('div', { class: `alert ${res.ok ? 'alert-info' : 'alert-error'} test-result`, role: 'status' },
          icon(res.ok ? 'check' : 'alert'),
          h('div', {}, h('p', { text: res.ok ? 'The test succeeded:' : 'The test failed:' }), h('p', { class: 'mono test-message', text: res.message })));
        modal({ title: `Test of ${r.name}`, content: box, actions: [button('Close', { dataset: { close: 'ok' } })] });
      } catch (err) { reportError(err, 'Test'); }
    });
  }

  function edit(current) {
    const editing = Boolean(current);
    const formId = uid('recipient');
    const kindSel = field({ label: 'Kind', name: 'kind', type: 'select', value: current?.kind || 'email', options: Object.entries(KINDS).map(([k, d]) => ({ value: k, label: d.label })), attrs: editing ? { disabled: true } : {} });
    const name = field({ label: 'Name', name: 'name', value: current?.name || '', attrs: { required: true, maxlength: 64 } });
    const id = field({ label: 'Id', name: 'id', value: current?.id || '', hint: 'Used by rules; letters, digits, “_” and “-”.', attrs: { required: true, maxlength: 32, pattern: '[A-Za-z0-9_-]{1,32}', readOnly: editing, spellcheck: 'false' } });
    const enabled = toggle({ label: 'Enabled', name: 'enabled', checked: current?.enabled ?? true });
    const kindBox = h('div', { class: 'form-grid' });
    let wraps = {};
    const paintKind = () => {
      const defs = KINDS[kindSel.control.value].fields;
      const same = current && current.kind === kindSel.control.value ? current : null;
      wraps = Object.fromEntries(defs.map((d) => [d.name, control(d, same, editing && same)]));
      fill(kindBox, Object.values(wraps));
    };
    kindSel.control.addEventListener('change', paintKind);
    if (!editing) {
      name.control.addEventListener('input', () => {
        if (!id.control.dataset.touched) id.control.value = slugify(name.control.value, recipients.map((r) => r.id));
      });
      id.control.addEventListener('input', () => { id.control.dataset.touched = '1'; });
    }
    paintKind();
    const form = h('form', { novalidate: true, id: formId }, formError(),
      h('div', { class: 'form-grid' }, kindSel, name, id, enabled), kindBox);
    const { close, save } = formDialog({ title: editing ? `Edit ${current.name}` : 'Add recipient', form, saveText: editing ? 'Save' : 'Add recipient', drawer: true, wide: true });
    queueMicrotask(() => (editing ? name : kindSel).control.focus());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const kind = kindSel.control.value;
      const defs = KINDS[kind].fields;
      const problems = [];
      if (!name.control.value.trim()) problems.push({ field: 'name', message: 'Give it a name.' });
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id.control.value.trim())) problems.push({ field: 'id', message: 'Letters, digits, “_” and “-”, up to 32.' });
      const body = { kind, id: id.control.value.trim(), name: name.control.value.trim(), enabled: enabled.control.checked, ...readFields(defs, wraps, problems) };
      if (problems.length) { showErrors(form, { errors: problems }); return; }
      const known = new Set(['kind', 'id', 'name', 'enabled', ...defs.map((d) => d.name)]);
      const mapField = (f) => f.split('.').reverse().find((p) => known.has(p)) ?? f;
      busy(save, async () => {
        try {
          if (editing) await put(`/api/v1/recipients/${encodeURIComponent(current.id)}`, body);
          else await post('/api/v1/recipients', body);
          close('saved');
          toast(`Recipient ${body.name} saved.`, 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          if (err.status === 409) showErrors(form, { errors: [{ field: 'id', message: err.message }] });
          else showErrors(form, err, { mapField });
        }
      });
    });
  }

  async function remove(r) {
    const ok = await confirmDialog({ title: 'Delete recipient', message: `Delete “${r.name}”? A rule that names it must be changed first.`, confirmLabel: 'Delete recipient', danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/recipients/${encodeURIComponent(r.id)}`);
      toast(`Recipient ${r.name} deleted.`, 'success');
      await load();
    } catch (err) { reportError(err, 'Delete'); }
  }

  root.append(
    h('section', { class: 'section' }, listBox),
    h('section', { class: 'section' },
      h('div', { class: 'section-head' }, h('h2', { text: 'Outbox' }), h('span', { class: 'muted small', text: 'Deliveries waiting, retrying or given up' })),
      queueBox));
  await load();
}
