// First start: create the administrator with the one-time setup code that `camio run` printed.

import { get, navigate, post, setSession } from '../app.js';
import { busy, button, field, formError, h, showErrors } from '../lib/ui.js';

const MIN_PASSWORD = 8;

export async function render(root) {
  try {
    const setup = await get('/api/v1/setup', { auth: true });
    if (setup && setup.needed === false) { navigate('#/login'); return; }
  } catch { /* show the form anyway */ }

  const code = field({
    label: 'Setup code', name: 'code',
    hint: 'Printed on the console by “camio run” on the first start. It works once.',
    attrs: { autocomplete: 'one-time-code', required: true, autocapitalize: 'none', spellcheck: 'false', class: 'mono' },
  });
  const username = field({ label: 'Administrator name', name: 'username', value: 'admin', attrs: { autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' } });
  const password = field({ label: 'Password', name: 'password', type: 'password', hint: `At least ${MIN_PASSWORD} characters. There is no default password.`, attrs: { autocomplete: 'new-password', required: true, minlength: MIN_PASSWORD } });
  const repeat = field({ label: 'Repeat the password', name: 'repeat', type: 'password', attrs: { autocomplete: 'new-password', required: true } });
  const submit = button('Create administrator', { type: 'submit', variant: 'primary' });
  const form = h('form', { novalidate: true }, formError(), code, username, password, repeat, submit);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const problems = [];
    if (!code.control.value.trim()) problems.push({ field: 'code', message: 'Enter the setup code from the console.' });
    if (!username.control.value.trim()) problems.push({ field: 'username', message: 'Choose a name.' });
    if (password.control.value.length < MIN_PASSWORD) problems.push({ field: 'password', message: `Use at least ${MIN_PASSWORD} characters.` });
    else if (password.control.value !== repeat.control.value) problems.push({ field: 'repeat', message: 'The passwords differ.' });
    if (problems.length) { showErrors(form, { errors: problems }); return; }
    busy(submit, async () => {
      try {
        const data = await post('/api/v1/setup', {
          code: code.control.value.trim(),
          username: username.control.value.trim(),
          password: password.control.value,
        }, { auth: true });
        setSession(data);
        navigate('#/live');
      } catch (err) {
        if (err.status === 409) { navigate('#/login'); return; }
        showErrors(form, err.errors.length ? err : { message: err.status === 403 || err.status === 401 ? 'The setup code is not right.' : err.message, errors: [] });
      }
    });
  });

  root.append(h('div', { class: 'auth-page' },
    h('div', { class: 'auth-card wide' },
      h('div', { class: 'auth-logo' }, h('img', { src: '/static/logo.svg', alt: '' }), h('strong', { text: 'camio' })),
      h('h1', { tabindex: '-1', text: 'Welcome. Set up this device' }),
      h('p', { class: 'lead', text: 'This device has no account yet. Create its administrator to start.' }),
      h('ol', { class: 'steps' },
        h('li', { text: 'Find the one-time setup code in the console output of “camio run”.' }),
        h('li', { text: 'Choose the administrator’s name and password.' }),
        h('li', { text: 'Add more users (operators, viewers) later under Users.' })),
      form)));
  // After the router has put the page into the document (and focused its heading): a
  // microtask would run while the page is still detached, and focus nothing.
  setTimeout(() => code.control.focus());
}
