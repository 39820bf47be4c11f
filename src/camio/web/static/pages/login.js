// Sign in: POST /api/v1/session; a first start without any account goes to #/setup instead.

import { get, navigate, post, setSession } from '../app.js';
import { busy, button, field, formError, h, showErrors } from '../lib/ui.js';

export async function render(root, ctx) {
  try {
    const setup = await get('/api/v1/setup', { auth: true });
    if (setup?.needed) { navigate('#/setup'); return; }
  } catch { /* show the form; the login call will report what is wrong */ }

  const username = field({ label: 'User name', name: 'username', attrs: { autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' } });
  const password = field({ label: 'Password', name: 'password', type: 'password', attrs: { autocomplete: 'current-password', required: true } });
  const submit = button('Sign in', { type: 'submit', variant: 'primary' });
  const errors = formError();
  const form = h('form', { novalidate: true }, errors, username, password, submit);
  let lockTimer = null;
  ctx.onCleanup(() => clearInterval(lockTimer));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!username.control.value.trim() || !password.control.value) {
      showErrors(form, { errors: [
        ...(!username.control.value.trim() ? [{ field: 'username', message: 'Enter your user name.' }] : []),
        ...(!password.control.value ? [{ field: 'password', message: 'Enter your password.' }] : []),
      ] });
      return;
    }
    busy(submit, async () => {
      try {
        const data = await post('/api/v1/session', {
          username: username.control.value.trim(),
          password: password.control.value,
        }, { auth: true });
        setSession(data);
        const next = ctx.query.get('next');
        navigate(`#/${next && /^[a-z]+$/.test(next) ? next : 'live'}`);
      } catch (err) {
        password.control.value = '';
        if (err.status === 401) {
          showErrors(form, { message: 'Wrong user name or password.' });
        } else if (err.status === 429) {
          lockOut(err.retryAfter || 30);
        } else {
          showErrors(form, err);
        }
      }
    });
  });

  function lockOut(seconds) {
    const until = Date.now() + seconds * 1000;
    const paint = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(lockTimer);
        submit.disabled = false;
        showErrors(form, { message: 'You can try again now.' });
        return;
      }
      submit.disabled = true;
      const box = form.querySelector('.form-error');
      box.hidden = false;
      box.replaceChildren(h('div', {}, h('p', { text: `Too many failed attempts. Try again in ${left} s.` })));
    };
    clearInterval(lockTimer);
    paint();
    lockTimer = setInterval(paint, 1000);
  }

  root.append(h('div', { class: 'auth-page' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-logo' }, h('img', { src: '/static/logo.svg', alt: '' }), h('strong', { text: 'camio' })),
      h('h1', { tabindex: '-1', text: 'Sign in' }),
      h('p', { class: 'lead', text: 'Alarm inputs, outputs and rules of this device.' }),
      form,
      h('p', { class: 'auth-foot', text: 'Forgot the password? An administrator can reset it, or use “camio user passwd” on the device.' }))));
  // After the router has put the page into the document (and focused its heading): a
  // microtask would run while the page is still detached, and focus nothing.
  setTimeout(() => username.control.focus());
}
