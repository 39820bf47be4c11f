// Users: the administrator manages accounts and roles; everyone changes their own password.

import { can, del, get, patch, post, put, reportError, session, setSession, toast } from '../app.js';
import {
  badge, busy, button, card, clearErrors, confirmDialog, field, fill, fmtTime, formDialog, formError, h, icon, pageHeader, showErrors, table, td, uid,
} from '../lib/ui.js';

const MIN_PASSWORD = 8;
const ROLES = [
  ['admin', 'Administrator', 'Everything, including users and configuration'],
  ['operator', 'Operator', 'Drives outputs, virtual inputs, triggers and the simulator'],
  ['viewer', 'Viewer', 'Sees everything, changes nothing'],
];
const ROLE_TONE = { admin: 'info', operator: 'warn', viewer: 'muted' };

function passwordPair(name = 'password', label = 'New password') {
  const pw = field({ label, name, type: 'password', hint: `At least ${MIN_PASSWORD} characters.`, attrs: { autocomplete: 'new-password', required: true, minlength: MIN_PASSWORD } });
  const again = field({ label: 'Repeat the password', name: `${name}_repeat`, type: 'password', attrs: { autocomplete: 'new-password', required: true } });
  const check = () => {
    const problems = [];
    if (pw.control.value.length < MIN_PASSWORD) problems.push({ field: name, message: `Use at least ${MIN_PASSWORD} characters.` });
    else if (pw.control.value !== again.control.value) problems.push({ field: `${name}_repeat`, message: 'The passwords differ.' });
    return problems;
  };
  return { pw, again, check };
}

export async function render(root) {
  const admin = can('admin');
  root.append(pageHeader('Users', admin
    ? 'Accounts of this device and what each may do. There is no default account.'
    : 'Your account on this device.',
  admin ? button('Add user', { variant: 'primary', onclick: () => addUser() }, 'plus') : null));

  // Own account --------------------------------------------------------------------------
  const current = field({ label: 'Current password', name: 'old_password', type: 'password', attrs: { autocomplete: 'current-password', required: true } });
  const next = passwordPair('new_password');
  const changeBtn = button('Change password', { type: 'submit', variant: 'primary' });
  const pwForm = h('form', { novalidate: true }, formError(),
    h('div', { class: 'form-grid' }, current, next.pw, next.again),
    h('div', { class: 'form-actions' }, changeBtn, h('span', { class: 'muted small', text: 'Your other sessions end; this browser stays signed in.' })));
  pwForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const problems = next.check();
    if (!current.control.value) problems.unshift({ field: 'old_password', message: 'Enter your current password.' });
    if (problems.length) { showErrors(pwForm, { errors: problems }); return; }
    busy(changeBtn, async () => {
      try {
        const res = await put('/api/v1/session/password', { old_password: current.control.value, new_password: next.pw.control.value });
        if (res?.csrf_token) setSession(res);
        pwForm.reset();
        clearErrors(pwForm);
        toast('Your password was changed.', 'success');
      } catch (err) {
        if (err.status === 401) return;
        if (err.status === 403) showErrors(pwForm, { errors: [{ field: 'old_password', message: 'This is not your current password.' }] });
        else showErrors(pwForm, err);
      }
    });
  });
  const me = session.user;
  const roleInfo = ROLES.find(([r]) => r === me.role);
  const mine = card('Your account',
    h('div', { class: 'kv-inline section-xs' },
      h('span', {}, 'Signed in as ', h('b', { text: me.name })),
      h('span', {}, 'Role ', badge(roleInfo?.[1] ?? me.role, ROLE_TONE[me.role])),
      roleInfo ? h('span', { text: roleInfo[2] }) : null),
    h('h3', { class: 'section-sm', text: 'Change password' }),
    pwForm);

  if (!admin) {
    root.append(mine);
    return;
  }

  // Everyone (administrators) -----------------------------------------------------------------
  const listBox = h('div');
  let users = [];
  async function load() {
    users = (await get('/api/v1/users')).users;
    const rows = users.map((u) => {
      const isMe = u.name === me.name;
      const roleSel = h('select', { id: uid('role'), 'aria-label': `Role of ${u.name}` },
        ROLES.map(([v, l]) => h('option', { value: v, text: l, selected: v === u.role })));
      roleSel.addEventListener('change', async () => {
        const role = roleSel.value;
        if (isMe && role !== 'admin') {
          const ok = await confirmDialog({ title: 'Change your own role', message: 'You will lose administrator rights at once, and this page with them. Continue?', confirmLabel: 'Change my role', danger: true });
          if (!ok) { roleSel.value = u.role; return; }
        }
        roleSel.disabled = true;
        try {
          await patch(`/api/v1/users/${encodeURIComponent(u.name)}`, { role });
          u.role = role;
          toast(`${u.name} is now ${ROLES.find(([r]) => r === role)[1].toLowerCase()}.`, 'success');
          if (isMe) { location.reload(); return; }
        } catch (err) {
          roleSel.value = u.role;
          reportError(err, u.name);
        } finally { roleSel.disabled = false; }
      });
      return h('tr', {},
        td('User', h('span', { class: 'row' }, h('strong', { text: u.name }), isMe ? badge('you', 'info') : null)),
        td('Role', roleSel),
        td('Created', u.created ? h('span', { class: 'nowrap', text: fmtTime(u.created) }) : '—'),
        td('', h('div', { class: 'btn-group' },
          button('Reset password', { size: 'sm', onclick: () => resetPassword(u) }, 'lock'),
          h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', 'aria-label': `Delete user ${u.name}`, title: isMe ? 'You cannot delete yourself here' : 'Delete', disabled: isMe, onclick: () => removeUser(u) }, icon('trash'))), 'actions'));
    });
    fill(listBox, table({ caption: 'Users', columns: [{ label: 'User' }, { label: 'Role' }, { label: 'Created' }, { label: '', class: 'actions' }], rows }));
  }

  function addUser() {
    const name = field({ label: 'User name', name: 'name', hint: 'Letters, digits, “.”, “_” and “-”.', attrs: { required: true, maxlength: 32, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' } });
    const role = field({ label: 'Role', name: 'role', type: 'select', value: 'viewer', options: ROLES.map(([v, l, d]) => ({ value: v, label: `${l}: ${d}` })) });
    const pw = passwordPair('password', 'Password');
    const form = h('form', { novalidate: true, id: uid('adduser') }, formError(), h('div', { class: 'stack' }, name, role, pw.pw, pw.again));
    const { close, save } = formDialog({ title: 'Add user', form, saveText: 'Add user' });
    queueMicrotask(() => name.control.focus());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const problems = pw.check();
      if (!name.control.value.trim()) problems.unshift({ field: 'name', message: 'Choose a user name.' });
      if (problems.length) { showErrors(form, { errors: problems }); return; }
      busy(save, async () => {
        try {
          await post('/api/v1/users', { name: name.control.value.trim(), role: role.control.value, password: pw.pw.control.value });
          close('saved');
          toast(`User ${name.control.value.trim()} added.`, 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          if (err.status === 409) showErrors(form, { errors: [{ field: 'name', message: err.message }] });
          else showErrors(form, guessField(err, 'name'));
        }
      });
    });
  }

  function resetPassword(u) {
    const pw = passwordPair('password', 'New password');
    const form = h('form', { novalidate: true, id: uid('resetpw') }, formError(),
      h('p', { class: 'muted', text: `Set a new password for ${u.name}. Their sessions end at once.` }),
      h('div', { class: 'stack' }, pw.pw, pw.again));
    const { close, save } = formDialog({ title: `Reset password of ${u.name}`, form, saveText: 'Set password' });
    queueMicrotask(() => pw.pw.control.focus());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const problems = pw.check();
      if (problems.length) { showErrors(form, { errors: problems }); return; }
      busy(save, async () => {
        try {
          await patch(`/api/v1/users/${encodeURIComponent(u.name)}`, { password: pw.pw.control.value });
          close('saved');
          toast(`New password set for ${u.name}.`, 'success');
        } catch (err) {
          if (err.status === 401) return;
          showErrors(form, guessField(err, 'password'));
        }
      });
    });
  }

  async function removeUser(u) {
    const ok = await confirmDialog({ title: 'Delete user', message: `Delete the account “${u.name}”? Their sessions end at once.`, confirmLabel: 'Delete user', danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/users/${encodeURIComponent(u.name)}`);
      toast(`User ${u.name} deleted.`, 'success');
      await load();
    } catch (err) { reportError(err, 'Delete'); }
  }

  root.append(
    h('section', { class: 'section' },
      h('div', { class: 'section-head' }, h('h2', { text: 'All users' }),
        h('span', { class: 'muted small', text: 'Administrator: everything · Operator: drives outputs and triggers · Viewer: read only' })),
      listBox),
    h('div', { class: 'section' }, mine));
  await load();
}

/** A user-store message without a field ("password must be at least 8 characters"): place it. */
function guessField(err, fallback) {
  if (err.errors?.length) return err;
  const msg = err.message || '';
  const fieldName = /password/i.test(msg) ? 'password' : /name/i.test(msg) ? 'name' : /role/i.test(msg) ? 'role' : fallback;
  return { errors: [{ field: fieldName, message: msg }] };
}
