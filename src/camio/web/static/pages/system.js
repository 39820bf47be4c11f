// System: identity and time zone, backup and restore, HTTPS certificate and HTTP mode, factory
// reset with a typed confirmation, and the audit log.

import { api, can, get, patch, post, put, refreshDevice, reportError, toast } from '../app.js';
import {
  badge, busy, button, card, choice, clearErrors, confirmDialog, field, fill, fmtDuration, fmtTime,
  formError, h, icon, pageHeader, showErrors, td, timeEl,
} from '../lib/ui.js';

const AUDIT_NAMES = {
  login: 'Signed in',
  login_failed: 'Sign-in refused',
  login_throttled: 'Sign-in throttled',
  logout: 'Signed out',
  setup_failed: 'Wrong setup code',
  user_created: 'User created',
  user_deleted: 'User deleted',
  user_role: 'Role changed',
  user_password: 'Password reset',
  password_changed: 'Password changed',
  password_change_failed: 'Password change refused',
  config: 'Configuration changed',
  output: 'Manual output control',
};
const CONFIRM_TEXT = 'factory reset';

function timeZones(current) {
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
  const set = new Set(['UTC', ...zones, current].filter(Boolean));
  return [...set].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)));
}

export async function render(root, ctx) {
  const admin = can('admin');
  let sys = await get('/api/v1/system');
  root.append(pageHeader('System', admin
    ? 'Device identity, configuration backups, HTTPS, and the audit log.'
    : 'Device identity and software. Administrators change these settings.'));

  // Identity ----------------------------------------------------------------------------------
  const uptime = h('dd', { class: 'countdown' });
  const startedAt = Date.now() - sys.uptime_s * 1000;
  const paintUptime = () => { uptime.textContent = fmtDuration((Date.now() - startedAt) / 1000); };
  paintUptime();
  ctx.every(1000, paintUptime);
  const facts = h('dl', { class: 'props' });
  const paintFacts = () => fill(facts,
    h('dt', { text: 'Brand' }), h('dd', { text: sys.identity.brand }),
    h('dt', { text: 'Model' }), h('dd', { text: sys.identity.model }),
    h('dt', { text: 'Serial number' }), h('dd', { class: 'mono', text: sys.identity.serial }),
    h('dt', { text: 'Firmware' }), h('dd', { text: sys.identity.firmware }),
    h('dt', { text: 'Software' }), h('dd', { text: `camio ${sys.version}` }),
    h('dt', { text: 'Up for' }), uptime,
    sys.revision !== undefined ? [h('dt', { text: 'Configuration' }), h('dd', { text: `revision ${sys.revision}` })] : null);
  paintFacts();

  let identityCard;
  if (admin) {
    const name = field({ label: 'Device name', name: 'name', value: sys.identity.name, hint: 'Shown in the title bar and to camera clients.', attrs: { required: true, maxlength: 64 } });
    const tz = field({ label: 'Time zone', name: 'timezone', type: 'select', value: sys.identity.timezone, options: timeZones(sys.identity.timezone).map((z) => ({ value: z, label: z.replaceAll('_', ' ') })), hint: 'Default for new schedules and for dialects that show local time.' });
    const save = button('Save', { type: 'submit', variant: 'primary' });
    const form = h('form', { novalidate: true }, formError(), h('div', { class: 'form-grid' }, name, tz), h('div', { class: 'form-actions' }, save));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(save, async () => {
        try {
          sys = await patch('/api/v1/system/identity', { name: name.control.value.trim(), timezone: tz.control.value });
          clearErrors(form);
          paintFacts();
          refreshDevice();
          toast('Device identity saved.', 'success');
        } catch (err) { if (err.status !== 401) showErrors(form, err); }
      });
    });
    identityCard = card('Device', form, h('div', { class: 'section-sm' }, facts));
  } else {
    identityCard = card('Device', h('dl', { class: 'props' },
      h('dt', { text: 'Name' }), h('dd', { text: sys.identity.name }),
      h('dt', { text: 'Time zone' }), h('dd', { text: sys.identity.timezone })), h('div', { class: 'section-sm' }, facts));
  }

  if (!admin) {
    root.append(h('div', { class: 'columns' }, identityCard, httpsCard(sys, false)));
    return;
  }

  // Backup and restore ------------------------------------------------------------------------
  const file = h('input', { type: 'file', id: 'restore-file', accept: '.yaml,.yml,application/yaml,text/yaml,text/plain' });
  const restoreBtn = button('Restore…', { variant: 'secondary', disabled: true }, 'upload');
  file.addEventListener('change', () => { restoreBtn.disabled = !file.files.length; });
  const restoreForm = h('form', { novalidate: true }, formError(),
    h('div', { class: 'field' }, h('label', { for: 'restore-file', text: 'Restore from a backup file' }), file,
      h('p', { class: 'hint', text: 'Replaces the whole configuration (ports, rules, schedules). Accounts are not in backups.' })),
    h('div', { class: 'form-actions' }, restoreBtn));
  restoreBtn.addEventListener('click', async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    const ok = await confirmDialog({ title: 'Restore configuration', message: `Replace the whole configuration with “${chosen.name}”? The current one is lost unless you downloaded a backup.`, confirmLabel: 'Restore', danger: true });
    if (!ok) return;
    busy(restoreBtn, async () => {
      try {
        const text = await chosen.text();
        const res = await api('POST', '/api/v1/system/restore', { body: text, contentType: 'application/yaml' });
        clearErrors(restoreForm);
        file.value = '';
        restoreBtn.disabled = true;
        toast(`Configuration restored (revision ${res.revision}).`, 'success');
        sys = await get('/api/v1/system');
        paintFacts();
        refreshDevice();
      } catch (err) { if (err.status !== 401) showErrors(restoreForm, err); }
    });
  });
  const backupCard = card('Backup and restore',
    h('p', { class: 'card-desc', text: 'The configuration as a YAML file, as “camio config export” writes it.' }),
    h('a', { class: 'btn btn-secondary', href: '/api/v1/system/backup', download: `camio-${sys.identity.serial}.yaml` }, icon('download'), h('span', { text: 'Download backup' })),
    h('div', { class: 'section-sm' }, restoreForm));

  // Factory reset -----------------------------------------------------------------------------
  const confirmField = field({ label: `Type “${CONFIRM_TEXT}” to confirm`, name: 'confirm', attrs: { autocomplete: 'off', spellcheck: 'false' } });
  const resetBtn = button('Factory reset', { type: 'submit', variant: 'danger', disabled: true }, 'refresh');
  confirmField.control.addEventListener('input', () => {
    resetBtn.disabled = confirmField.control.value.trim().toLowerCase() !== CONFIRM_TEXT;
  });
  const resetForm = h('form', { novalidate: true }, formError(), h('div', { class: 'form-grid' }, confirmField), h('div', { class: 'form-actions' }, resetBtn));
  resetForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (resetBtn.disabled) return;
    busy(resetBtn, async () => {
      try {
        const res = await post('/api/v1/system/factory-reset', { confirm: confirmField.control.value.trim() });
        confirmField.control.value = '';
        resetBtn.disabled = true;
        clearErrors(resetForm);
        toast(`Default configuration restored (revision ${res?.revision ?? '?'}).`, 'success');
        sys = await get('/api/v1/system');
        paintFacts();
      } catch (err) { if (err.status !== 401) showErrors(resetForm, err); }
    });
  });
  const resetCard = h('section', { class: 'card danger-zone' },
    h('h2', { class: 'card-title' }, icon('alert'), 'Factory reset'),
    h('p', { class: 'card-desc', text: 'Restores the default configuration: two inputs, one relay, no rules and no schedules. Accounts and the device identity are kept. Download a backup first.' }),
    resetForm);

  // Audit log -----------------------------------------------------------------------------------
  const auditBody = h('tbody');
  const auditOlder = button('Load older', { variant: 'secondary', size: 'sm' });
  let oldest = null;
  async function loadAudit() {
    const params = new URLSearchParams({ limit: '25', order: 'desc' });
    if (oldest !== null) params.set('before', String(oldest));
    const res = await get(`/api/v1/audit?${params}`);
    const events = [...res.events].sort((a, b) => b.id - a.id);
    for (const ev of events) {
      auditBody.append(auditRow(ev));
      if (oldest === null || ev.id < oldest) oldest = ev.id;
    }
    auditOlder.hidden = res.events.length < 25;
    if (!auditBody.children.length) auditBody.append(h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'No audit events yet.' })));
  }
  auditOlder.addEventListener('click', () => busy(auditOlder, () => loadAudit().catch((err) => reportError(err, 'Audit log'))));
  const auditCard = h('section', { class: 'section' },
    h('div', { class: 'section-head' }, h('h2', { text: 'Audit log' }),
      h('a', { class: 'btn btn-ghost btn-sm', href: '#/events?topic=audit%2F*' }, icon('events'), h('span', { text: 'Open in the event log' }))),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack' },
      h('caption', { class: 'sr-only', text: 'Audit log, newest first' }),
      h('thead', {}, h('tr', {}, ['Time', 'What', 'User', 'Client', 'Details'].map((l) => h('th', { scope: 'col', text: l })))),
      auditBody)),
    h('div', { class: 'pager' }, auditOlder));
  ctx.subscribe((ev) => {
    if (ev.topic?.startsWith('audit/') && ev.kind !== 'initialized') {
      auditBody.querySelector('td[colspan]')?.parentElement.remove();
      const row = auditRow(ev);
      row.classList.add('new-row');
      auditBody.prepend(row);
    }
  });

  root.append(
    h('div', { class: 'columns' }, identityCard, backupCard),
    h('div', { class: 'columns section' }, httpsCard(sys, true, async () => {
      sys = await get('/api/v1/system');
      return sys;
    }), resetCard),
    auditCard);
  await loadAudit();
}

function auditRow(ev) {
  const what = ev.topic.replace(/^audit\//, '');
  const failed = /failed|throttled/.test(what);
  const data = Object.entries(ev.data || {}).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
  return h('tr', {},
    td('Time', h('span', { class: 'nowrap' }, timeEl(ev.time))),
    td('What', badge(AUDIT_NAMES[what] || what.replaceAll('_', ' '), failed ? 'alarm' : what === 'login' ? 'ok' : 'muted')),
    td('User', h('span', { text: ev.cause?.user || ev.source || '—' })),
    td('Client', h('span', { class: 'mono small', text: ev.cause?.client || '—' })),
    td('Details', h('span', { class: 'small', text: data || '—' })));
}

// HTTPS certificate and plain-HTTP mode --------------------------------------------------------

function httpsCard(sys, admin, refresh) {
  const info = h('div');
  const paintInfo = (tls) => {
    const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
    const url = tls.port ? `https://${host}:${tls.port}/` : null;
    fill(info, h('dl', { class: 'props' },
      h('dt', { text: 'HTTPS' }), h('dd', {}, tls.enabled ? badge('On', 'ok') : badge('Off', 'muted'),
        url && tls.enabled ? [' ', h('a', { href: url, text: url })] : null),
      tls.subject ? [h('dt', { text: 'Certificate' }), h('dd', { class: 'row' }, h('span', { text: tls.subject }), tls.self_signed ? badge('Self-signed', 'warn', { title: 'Browsers warn about it; upload a certificate from your CA' }) : badge('CA-signed', 'ok'))] : null,
      tls.issuer && !tls.self_signed ? [h('dt', { text: 'Issuer' }), h('dd', { text: tls.issuer })] : null,
      tls.not_after ? [h('dt', { text: 'Valid until' }), h('dd', { text: fmtTime(tls.not_after) })] : null,
      tls.sha256 ? [h('dt', { text: 'SHA-256' }), h('dd', { class: 'mono small', text: tls.sha256.match(/.{1,2}/g).join(':') })] : null));
  };
  paintInfo(sys.tls || {});
  if (!admin) return card('HTTPS', info);

  // Upload
  const pemField = (label, name, accept) => {
    const f = field({ label, name, type: 'textarea', attrs: { spellcheck: 'false', placeholder: name === 'certificate' ? '-----BEGIN CERTIFICATE-----' : '-----BEGIN PRIVATE KEY-----', rows: 4 } });
    const picker = h('input', { type: 'file', accept, 'aria-label': `${label}: load from a file` });
    picker.addEventListener('change', async () => { if (picker.files[0]) f.control.value = await picker.files[0].text(); });
    f.insertBefore(picker, f.control.nextSibling);
    return f;
  };
  const cert = pemField('Certificate (PEM, with its chain)', 'certificate', '.pem,.crt,.cer');
  const key = pemField('Private key (PEM)', 'private_key', '.pem,.key');
  const upload = button('Install certificate', { type: 'submit', variant: 'primary' }, 'shield');
  const uploadForm = h('form', { novalidate: true, class: 'stack' }, formError(), cert, key, h('div', { class: 'form-actions' }, upload));
  uploadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const problems = [];
    if (!cert.control.value.includes('BEGIN CERTIFICATE')) problems.push({ field: 'certificate', message: 'Paste or load a PEM certificate.' });
    if (!/BEGIN [A-Z ]*PRIVATE KEY/.test(key.control.value)) problems.push({ field: 'private_key', message: 'Paste or load the PEM private key.' });
    if (problems.length) { showErrors(uploadForm, { errors: problems }); return; }
    busy(upload, async () => {
      try {
        await put('/api/v1/system/tls', { certificate: cert.control.value, private_key: key.control.value });
        clearErrors(uploadForm);
        key.control.value = '';
        toast('Certificate installed.', 'success');
        paintInfo((await refresh()).tls || {});
      } catch (err) { if (err.status !== 401) showErrors(uploadForm, err); }
    });
  });

  // HTTP mode
  const onHttp = location.protocol === 'http:';
  const mode = choice({
    label: 'Plain HTTP', name: 'mode', value: sys.http?.mode ?? 'both',
    options: [
      { value: 'both', label: 'HTTP and HTTPS', hint: 'Both serve everything (clients that speak only HTTP keep working)' },
      { value: 'redirect', label: 'Redirect to HTTPS', hint: 'Browsers are sent to HTTPS' },
      { value: 'off', label: 'HTTPS only', hint: 'HTTP is not served (except --listen)' },
    ],
  });
  const modeBtn = button('Save', { type: 'submit', variant: 'secondary' });
  const modeForm = h('form', { novalidate: true }, formError(), mode,
    onHttp ? h('p', { class: 'hint section-xs', text: 'You are on plain HTTP now: after “Redirect” or “HTTPS only”, open the HTTPS address above.' }) : null,
    h('div', { class: 'form-actions' }, modeBtn));
  modeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(modeBtn, async () => {
      try {
        if (onHttp && mode.value !== 'both') {
          const ok = await confirmDialog({ title: 'Leave plain HTTP', message: 'This browser uses plain HTTP now. Continue on the HTTPS address after saving.', confirmLabel: 'Save' });
          if (!ok) return;
        }
        await put('/api/v1/system/http', { mode: mode.value });
        clearErrors(modeForm);
        toast('HTTP mode saved.', 'success');
      } catch (err) { if (err.status !== 401) showErrors(modeForm, err); }
    });
  });

  return h('section', { class: 'card' },
    h('h2', { class: 'card-title' }, icon('shield'), 'HTTPS'),
    info,
    h('details', { class: 'section-sm disclosure' }, h('summary', { text: 'Upload your own certificate' }), h('div', { class: 'section-xs' }, uploadForm)),
    h('div', { class: 'section-sm' }, modeForm));
}
