// Alarm in: every input with the fields of the seed manuals, and an edit form per input.

import { can, get, patch, reportError, toast } from '../app.js';
import { describeAction, namesFrom, rulesUsing } from '../lib/describe.js';
import {
  badge, busy, button, choice, empty, field, fill, formDialog, formError, h, intValue, lamp, pageHeader, showErrors, table, td, toggle,
} from '../lib/ui.js';

const DEVICE_CLASSES = ['door', 'window', 'garage_door', 'opening', 'motion', 'occupancy', 'presence',
  'smoke', 'gas', 'moisture', 'vibration', 'sound', 'tamper', 'safety', 'problem', 'lock'];

export async function render(root, ctx) {
  const admin = can('admin');
  const body = h('div');
  const liveCells = new Map(); // port id -> {cell, port}
  let data = null;

  async function load() {
    const [ports, schedules, rules] = await Promise.all([
      get('/api/v1/ports'), get('/api/v1/schedules'), get('/api/v1/rules'),
    ]);
    data = {
      ports: ports.ports,
      inputs: ports.ports.filter((p) => p.direction === 'input'),
      schedules: schedules.schedules,
      rules: rules.rules,
    };
    paint();
  }

  function paint() {
    liveCells.clear();
    if (!data.inputs.length) { fill(body, empty('This device has no alarm inputs.')); return; }
    const names = namesFrom(data.ports, data.schedules);
    const rows = data.inputs.map((port, index) => {
      const cfg = port.config;
      const linked = rulesUsing(data.rules, port.id);
      const stateCell = td('State', null);
      liveCells.set(port.id, { cell: stateCell, port });
      paintState(port.id);
      return h('tr', { class: cfg.enabled ? '' : 'is-disabled' },
        td('Input', [h('strong', { class: 'nowrap', text: cfg.name }), h('span', { class: 'sub', text: `${port.id} · ch. ${index + 1}` })]),
        td('Trigger mode', [h('span', { class: 'nowrap', text: cfg.normal_state === 'closed' ? 'Disconnect (NC)' : 'Connect (NO)' }),
          cfg.supervised ? h('span', { class: 'sub', text: 'supervised (EOL)' }) : null]),
        td('Status', cfg.enabled ? badge('Enabled', 'ok') : badge('Disabled', 'muted')),
        td('Debounce', h('span', { class: 'nowrap', text: `${cfg.debounce_on_ms} / ${cfg.debounce_off_ms} ms` })),
        td('Arming', cfg.arming_schedule ? names.schedules.get(cfg.arming_schedule) || cfg.arming_schedule : h('span', { class: 'muted', text: 'Always armed' })),
        td('Linked actions', linked.length
          ? h('ul', { class: 'plain-list' }, linked.map((r) => h('li', {},
            h('a', { href: `#/rules?edit=${encodeURIComponent(r.id)}`, text: r.name }),
            h('span', { class: 'muted', text: ` → ${describeAction(r.action, names, r.action_mode)}` }),
            r.enabled ? null : h('span', { class: 'muted', text: ' (off)' }))))
          : h('span', { class: 'muted', text: 'None' })),
        stateCell,
        td('', admin ? h('div', { class: 'btn-group' }, button('Edit', { size: 'sm', onclick: () => edit(port), 'aria-label': `Edit ${cfg.name}` }, 'edit')) : null, 'actions'));
    });
    fill(body, table({
      caption: 'Alarm inputs',
      columns: [{ label: 'Input' }, { label: 'Trigger mode' }, { label: 'Status' },
        { label: 'Debounce on/off' }, { label: 'Arming schedule' },
        { label: 'Linked actions' }, { label: 'State' }, { label: '', class: 'actions' }],
      rows,
    }));
  }

  function paintState(id) {
    const item = liveCells.get(id);
    if (!item) return;
    const p = item.port;
    const [tone, text] = !p.enabled ? ['off', 'Disabled'] : p.tamper ? ['warn', 'Tamper'] : p.active ? ['alarm', 'Active'] : ['ok', 'Normal'];
    fill(item.cell, h('span', { class: 'row nowrap', 'aria-live': 'polite' },
      lamp(tone, text), h('span', { text }), h('span', { class: 'muted mono', text: p.circuit })));
  }

  function edit(port) {
    const cfg = port.config;
    const interval = data.schedules.filter((s) => s.kind === 'interval');
    const name = field({ label: 'Name', name: 'name', value: cfg.name, attrs: { required: true, maxlength: 64 } });
    const description = field({ label: 'Description', name: 'description', value: cfg.description, attrs: { maxlength: 256 }, wide: true });
    const mode = choice({
      label: 'Trigger mode', name: 'normal_state', value: cfg.normal_state,
      options: [
        { value: 'open', label: 'Connect (NO)', hint: 'Normally open: active when the circuit closes' },
        { value: 'closed', label: 'Disconnect (NC)', hint: 'Normally closed: active when the circuit opens' },
      ],
    });
    const enabled = toggle({ label: 'Enabled', name: 'enabled', checked: cfg.enabled, hint: 'A disabled input is never active.' });
    const supervised = toggle({ label: 'Supervised loop', name: 'supervised', checked: cfg.supervised, hint: 'End-of-line resistors: a cut or shorted wire reports tamper.' });
    const debOn = field({ label: 'Debounce on (ms)', name: 'debounce_on_ms', type: 'number', value: cfg.debounce_on_ms, hint: 'The level must stay active this long.', attrs: { min: 0, max: 600000, step: 1, inputmode: 'numeric' } });
    const debOff = field({ label: 'Debounce off (ms)', name: 'debounce_off_ms', type: 'number', value: cfg.debounce_off_ms, hint: 'The level must stay normal this long.', attrs: { min: 0, max: 600000, step: 1, inputmode: 'numeric' } });
    const arming = field({
      label: 'Arming schedule', name: 'arming_schedule', type: 'select', value: cfg.arming_schedule ?? '',
      hint: 'Armed only while this schedule is active. Rules can require an armed input.',
      options: [{ value: '', label: 'Always armed' }, ...interval.map((s) => ({ value: s.id, label: s.name }))],
    });
    const listId = `dc-${port.id}`;
    const deviceClass = field({ label: 'Device class', name: 'device_class', value: cfg.device_class ?? '', hint: 'For home automation (door, motion, ...).', attrs: { list: listId, autocomplete: 'off' } });
    deviceClass.append(h('datalist', { id: listId }, DEVICE_CLASSES.map((c) => h('option', { value: c }))));
    const form = h('form', { novalidate: true, id: `edit-${port.id}` },
      formError(),
      h('div', { class: 'form-grid' }, name, deviceClass, description),
      h('div', { class: 'stack section-sm' }, mode),
      h('div', { class: 'form-grid section-sm' }, enabled, supervised, debOn, debOff, arming));
    const { close, save } = formDialog({ title: `Alarm input ${port.id}`, form, drawer: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const changes = {
        name: name.control.value.trim(),
        description: description.control.value,
        normal_state: mode.value,
        enabled: enabled.control.checked,
        supervised: supervised.control.checked,
        debounce_on_ms: intValue(debOn.control),
        debounce_off_ms: intValue(debOff.control),
        arming_schedule: arming.control.value || null,
        device_class: deviceClass.control.value.trim() || null,
      };
      busy(save, async () => {
        try {
          await patch(`/api/v1/ports/${encodeURIComponent(port.id)}`, changes);
          close('saved');
          toast(`${changes.name} saved.`, 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          showErrors(form, err);
        }
      });
    });
  }

  root.append(pageHeader('Alarm in', 'The alarm inputs of the terminal block: trigger mode, debounce, supervision and arming.'), body);
  await load();

  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  ctx.subscribe((ev) => {
    if (ev.topic === 'io/input' && liveCells.has(ev.source)) {
      const p = liveCells.get(ev.source).port;
      Object.assign(p, { active: ev.data.active, circuit: ev.data.circuit, tamper: ev.data.tamper });
      paintState(ev.source);
    } else if (ev.topic === 'config/changed') {
      clearTimeout(timer);
      timer = setTimeout(() => load().catch((err) => reportError(err)), 300);
    }
  });
}
