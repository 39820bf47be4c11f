// Rules: list with enable toggle and test-fire; create and edit from forms (conditions,
// action, fallback, timing), with validation messages beside the fields.

import { can, del, get, navigate, post, put, reportError, toast } from '../app.js';
import { describeAction, namesFrom, ruleSummary } from '../lib/describe.js';
import {
  badge, busy, button, choice, clearFieldError, confirmDialog, empty, field, fill, formError, h,
  icon, intValue, lamp, modal, pageHeader, showErrors, slugify, table, td, toggle, uid,
} from '../lib/ui.js';

const CONDITION_KINDS = [
  ['input', 'Alarm input'],
  ['virtual_input', 'Virtual input'],
  ['manual_trigger', 'Manual trigger'],
  ['schedule', 'Schedule'],
  ['recurrence', 'Recurrence (every N s)'],
  ['output', 'Output state'],
  ['device_started', 'Device started'],
  ['storage', 'Storage full or failed'],
  ['video_source_lost', 'Video source lost'],
  ['mqtt', 'MQTT message'],
];
const MOMENTARY = new Set(['recurrence', 'device_started']);
const ACTION_KINDS = [
  ['set_output', 'Set an output'],
  ['set_virtual_input', 'Set a virtual input'],
  ['notify', 'Send a notification'],
  ['play_audio', 'Play an audio clip'],
  ['snapshot', 'Take snapshots'],
  ['record', 'Record video'],
  ['overlay_text', 'Show overlay text'],
];
// The action kinds that can hold while the conditions hold (supports_while_active).
const WHILE_ACTIVE_KINDS = new Set(['set_output', 'set_virtual_input', 'play_audio', 'record', 'overlay_text']);
// The notify action's defaults and limits (camio.actions.notify); the snapshot and record
// actions send with the same texts (camio.actions.media_common).
const NOTIFY_SUBJECT = '{device.name}: {event.topic} {event.source}';
const NOTIFY_MESSAGE = '{rule.name}: {event.topic} on {event.source} at {event.time}';
const MAX_RECIPIENTS = 16;
const TEMPLATE_HINT = 'Placeholders: {event.topic}, {event.source}, {device.name}.';
// The video actions' defaults and limits (camio.actions.snapshot, .record, .overlay_text).
const SNAPSHOT = { count: 1, interval_ms: 1000, overlay: '', storage: 'local' };
const RECORD = { pre_s: 5, post_s: 10, storage: 'local' };
const OVERLAY = { text: '', duration_s: 0 };
const STORAGE_OPTIONS = [
  { value: 'local', label: 'Local storage' },
  { value: 'share', label: 'Network share' },
];
const RUN_MODES = [
  ['parallel', 'Parallel: run again; the output’s re-trigger policy decides'],
  ['single', 'Single: ignore a new firing while the action runs'],
  ['restart', 'Restart: stop the running action, then run it again'],
];

export async function render(root, ctx) {
  const admin = can('admin');
  const operator = can('operator');
  const body = h('div');
  const rows = new Map(); // rule id -> {row, rule}
  let data = null;
  let editorOpen = false;

  async function load() {
    const [ports, schedules, rules, recipients] = await Promise.all([
      get('/api/v1/ports'), get('/api/v1/schedules'), get('/api/v1/rules'),
      // For the descriptions: recipients by name ("e-mail to Guard").
      get('/api/v1/recipients').catch(() => ({ recipients: [] })),
    ]);
    data = {
      ports: ports.ports,
      inputs: ports.ports.filter((p) => p.direction === 'input'),
      outputs: ports.ports.filter((p) => p.direction === 'output'),
      schedules: schedules.schedules,
      rules: rules.rules,
      names: namesFrom(ports.ports, schedules.schedules, recipients.recipients),
    };
    paint();
  }

  function paint() {
    rows.clear();
    if (!data.rules.length) {
      fill(body, empty('No rules yet. A rule connects conditions (an input, a schedule, …) to an action (an output, …).',
        admin ? button('Create the first rule', { variant: 'primary', onclick: () => openEditor(null) }, 'plus') : null));
      return;
    }
    const trs = data.rules.map((rule) => {
      const row = h('tr', { class: rule.enabled ? '' : 'is-disabled', dataset: { rule: rule.id } });
      rows.set(rule.id, { row, rule });
      paintRow(rule.id);
      return row;
    });
    fill(body, table({
      caption: 'Rules',
      columns: [{ label: 'On' }, { label: 'Rule' }, { label: 'What it does' }, { label: 'Mode' }, { label: 'Status' }, { label: '', class: 'actions' }],
      rows: trs,
    }));
  }

  function paintRow(id) {
    const { row, rule } = rows.get(id);
    const st = rule.status || {};
    const sw = h('input', { type: 'checkbox', role: 'switch', class: 'switch-input', checked: rule.enabled, disabled: !admin, 'aria-label': `Rule ${rule.name} enabled` });
    sw.addEventListener('change', async () => {
      sw.disabled = true;
      try {
        const next = await put(`/api/v1/rules/${encodeURIComponent(rule.id)}`, { ...stripStatus(rule), enabled: sw.checked });
        rows.get(id).rule = next;
        paintRow(id);
        toast(`Rule ${rule.name} ${next.enabled ? 'enabled' : 'disabled'}.`, 'success');
      } catch (err) {
        sw.checked = !sw.checked;
        reportError(err, rule.name);
      } finally { sw.disabled = !admin; }
    });
    const status = h('div', { class: 'row status-cell', 'aria-live': 'polite' },
      lamp(st.value ? 'alarm' : 'ok', st.value ? 'Conditions hold' : 'Conditions do not hold'),
      h('span', { text: st.value ? 'True' : 'False' }),
      st.holding ? badge('Holding', 'alarm') : null,
      h('span', { class: 'muted', text: `· fired ${st.fired ?? 0}×` }),
      st.suppressed ? h('span', { class: 'muted', title: 'Suppressed by the wait between actions', text: `· ${st.suppressed} suppressed` }) : null,
      rule._failed ? badge('Failed', 'alarm', { title: rule._failed }) : null);
    const actions = h('div', { class: 'btn-group' },
      operator ? button('Test', { size: 'sm', title: 'Run the action now, whatever the conditions', onclick: (e) => testRule(rule, e.currentTarget) }, 'target') : null,
      admin ? button('Edit', { size: 'sm', onclick: () => openEditor(rule) }, 'edit') : null,
      admin ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', 'aria-label': `Delete rule ${rule.name}`, title: 'Delete', onclick: () => deleteRule(rule) }, icon('trash')) : null);
    row.className = rule.enabled ? '' : 'is-disabled';
    fill(row,
      td('Enabled', h('label', { class: 'switch' }, sw, h('span', { class: 'switch-track', 'aria-hidden': 'true' }))),
      td('Rule', [h('strong', { text: rule.name }), h('span', { class: 'sub', text: rule.id })]),
      td('What it does', h('span', { class: 'rule-summary', text: ruleSummary(rule, data.names) })),
      td('Mode', h('span', { class: 'nowrap', text: rule.action_mode === 'while_active' ? 'While active' : 'Once' })),
      td('Status', status),
      td('', actions, 'actions'));
  }

  async function testRule(rule, btn) {
    await busy(btn, async () => {
      try {
        const res = await post(`/api/v1/rules/${encodeURIComponent(rule.id)}/test`, {});
        if (rows.has(rule.id)) { rows.get(rule.id).rule = res; paintRow(rule.id); }
        toast(`Rule ${rule.name}: ${describeAction(rule.action, data.names, 'once')}.`, 'success');
      } catch (err) { reportError(err, `Test ${rule.name}`); }
    });
  }

  async function deleteRule(rule) {
    const ok = await confirmDialog({ title: 'Delete rule', message: `Delete the rule “${rule.name}”? This cannot be undone.`, confirmLabel: 'Delete rule', danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/rules/${encodeURIComponent(rule.id)}`);
      toast(`Rule ${rule.name} deleted.`, 'success');
      await load();
    } catch (err) { reportError(err, 'Delete'); }
  }

  // Editor ----------------------------------------------------------------------------------
  async function openEditor(rule) {
    editorOpen = true;
    // What the notify and play_audio actions choose from, fresh for each editor.
    const [recipients, clips] = await Promise.all([
      get('/api/v1/recipients').catch(() => ({ recipients: [] })),
      get('/api/v1/audio/clips').catch(() => ({ clips: [] })),
    ]);
    if (!ctx.alive()) return;
    const choices = { ...data, recipients: recipients.recipients, clips: clips.clips };
    data.names = namesFrom(data.ports, data.schedules, recipients.recipients);
    const isNew = !rule;
    const draft = rule ? stripStatus(structuredClone(rule)) : {
      id: '', name: '', enabled: true, trigger_first: false, wait_between_actions_ms: 0,
      action_mode: 'once', run_mode: 'parallel', fallback: null,
      conditions: [{ kind: 'input', port: data.inputs[0]?.id ?? '', state: 'active', require_armed: true, invert: false }],
      action: { kind: 'set_output', port: data.outputs[0]?.id ?? '', active: true, duration_ms: null },
    };
    const name = field({ label: 'Name', name: 'name', value: draft.name, attrs: { required: true, maxlength: 64, placeholder: 'e.g. Door opened at night' } });
    const idField = field({ label: 'Rule id', name: 'id', value: draft.id, hint: isNew ? 'Filled in from the name; letters, digits, - and _.' : 'The id cannot change.', attrs: { required: true, maxlength: 32, pattern: '[A-Za-z0-9_-]{1,32}', readOnly: !isNew, class: 'mono', spellcheck: 'false' } });
    let idTouched = !isNew;
    idField.control.addEventListener('input', () => { idTouched = true; });
    name.control.addEventListener('input', () => {
      if (!idTouched) {
        idField.control.value = slugify(name.control.value, data.rules.map((r) => r.id));
        clearFieldError(idField);
      }
    });
    const enabled = toggle({ label: 'Enabled', name: 'enabled', checked: draft.enabled });

    // Conditions
    const condList = h('div', { class: 'cond-list' });
    const condEditors = [];
    const triggerFirst = toggle({ label: 'The first condition is a trigger', name: 'trigger_first', checked: draft.trigger_first, hint: 'Fire when it becomes true while the others hold; changes of the others alone never fire the rule.' });
    const addCond = button('Add condition', { size: 'sm', disabled: draft.conditions.length >= 16 }, 'plus');
    function renumber() {
      fill(condList, condEditors.map((ed, i) => [
        i > 0 ? h('div', { class: 'cond-and', 'aria-hidden': 'true', text: 'and' }) : null,
        ed.mount(i, condEditors.length),
      ]));
      addCond.disabled = condEditors.length >= 16;
    }
    const removeCond = (ed) => {
      condEditors.splice(condEditors.indexOf(ed), 1);
      renumber();
      condList.querySelector('select')?.focus();
    };
    for (const c of draft.conditions) condEditors.push(conditionEditor(c, data, removeCond));
    addCond.addEventListener('click', () => {
      condEditors.push(conditionEditor({ kind: 'input', port: data.inputs[0]?.id ?? '', state: 'active', require_armed: true, invert: false }, data, removeCond));
      renumber();
      condList.lastElementChild?.querySelector('select')?.focus();
    });
    renumber();

    // Action
    const actionEd = actionEditor('action', draft.action, choices);
    const hasFallback = toggle({ label: 'Run a fallback action when the action fails', name: 'fallback', checked: Boolean(draft.fallback) });
    const fallbackEd = actionEditor('fallback', draft.fallback || { kind: 'set_output', port: data.outputs[0]?.id ?? '', active: true, duration_ms: null }, choices);
    fallbackEd.el.hidden = !draft.fallback;
    hasFallback.control.addEventListener('change', () => { fallbackEd.el.hidden = !hasFallback.control.checked; });

    const mode = choice({
      label: 'Action mode', name: 'action_mode', value: draft.action_mode,
      options: [
        { value: 'once', label: 'Once', hint: 'Run the action when the conditions become true' },
        { value: 'while_active', label: 'While active', hint: 'Hold the action while the conditions hold; revert after' },
      ],
      onchange: () => syncMode(),
    });
    const wait = field({ label: 'Wait between actions (ms)', name: 'wait_between_actions_ms', type: 'number', value: draft.wait_between_actions_ms, hint: 'After an action the rule stays quiet this long (suppresses flapping).', attrs: { min: 0, max: 86400000, step: 1 } });
    const runMode = field({ label: 'Run mode', name: 'run_mode', type: 'select', value: draft.run_mode, hint: 'When a once-rule fires again while its action still runs.', options: RUN_MODES.map(([v, l]) => ({ value: v, label: l })), wide: true });
    function syncMode() {
      const whileActive = mode.value === 'while_active';
      triggerFirst.control.disabled = whileActive;
      if (whileActive) triggerFirst.control.checked = false;
      runMode.control.disabled = whileActive;
      actionEd.setMode(mode.value);
      fallbackEd.setMode(mode.value);
    }
    syncMode();

    const preview = h('p', { class: 'alert alert-info', 'aria-live': 'polite' });
    const form = h('form', { novalidate: true, id: uid('rule') },
      formError(),
      h('div', { class: 'form-grid' }, name, idField, enabled),
      h('fieldset', { class: 'group section-sm' }, h('legend', { text: 'Conditions (all must hold)' }),
        h('div', { class: 'stack' }, condList, h('div', { class: 'row' }, addCond), triggerFirst)),
      h('fieldset', { class: 'group section-sm' }, h('legend', { text: 'Action' }),
        h('div', { class: 'stack' }, mode, actionEd.el)),
      h('fieldset', { class: 'group section-sm' }, h('legend', { text: 'Timing and failures' }),
        h('div', { class: 'stack' }, h('div', { class: 'form-grid' }, wait, runMode), hasFallback, fallbackEd.el)),
      h('div', { class: 'section-sm' }, preview));

    function collect() {
      return {
        id: idField.control.value.trim(),
        name: name.control.value.trim(),
        enabled: enabled.control.checked,
        conditions: condEditors.map((ed) => ed.read()),
        trigger_first: triggerFirst.control.checked,
        wait_between_actions_ms: intValue(wait.control) ?? 0,
        action_mode: mode.value,
        action: actionEd.read(),
        fallback: hasFallback.control.checked ? fallbackEd.read() : null,
        run_mode: runMode.control.value,
      };
    }
    const paintPreview = () => {
      try {
        const r = collect();
        preview.replaceChildren(icon('info'), h('span', { text: r.conditions.length ? ruleSummary(r, data.names) : 'Add at least one condition.' }));
      } catch { /* half-filled form */ }
    };
    form.addEventListener('input', paintPreview);
    form.addEventListener('change', paintPreview);
    form.addEventListener('click', () => setTimeout(paintPreview));
    paintPreview();

    const save = button(isNew ? 'Create rule' : 'Save', { type: 'submit', variant: 'primary', form: form.getAttribute('id') });
    const testBtn = !isNew && operator ? button('Test', { title: 'Run the saved action now', onclick: (e) => testRule(rule, e.currentTarget) }, 'target') : null;
    const { close } = modal({
      title: isNew ? 'New rule' : `Rule ${rule.name}`, drawer: true, wide: true, content: form,
      actions: [testBtn, h('span', { class: 'spacer' }), button('Cancel', { dataset: { close: 'cancel' } }), save].filter(Boolean),
      onClose: () => {
        editorOpen = false;
        if (ctx.alive() && ctx.query.get('edit')) navigate('#/rules');
      },
    });
    if (isNew) queueMicrotask(() => name.control.focus());

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = collect();
      const problems = [];
      if (!r.name) problems.push({ field: 'name', message: 'Give the rule a name.' });
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(r.id)) problems.push({ field: 'id', message: 'Use 1 to 32 letters, digits, - or _.' });
      if (!r.conditions.length) problems.push({ field: 'conditions', message: 'Add at least one condition.' });
      if (isNew && data.rules.some((x) => x.id === r.id)) problems.push({ field: 'id', message: 'A rule with this id exists.' });
      for (const [where, act] of [['action', r.action], ['fallback', r.fallback]]) {
        if (act?.kind === 'snapshot' && act.storage === 'none' && !act.recipients.length) {
          problems.push({ field: `${where}.recipients`, message: 'Images kept nowhere must be sent: choose a recipient, or keep them on a storage.' });
        }
      }
      if (problems.length) { showErrors(form, { errors: problems }); return; }
      busy(save, async () => {
        try {
          if (isNew) await post('/api/v1/rules', r);
          else await put(`/api/v1/rules/${encodeURIComponent(r.id)}`, r);
          close('saved');
          toast(`Rule ${r.name} saved.`, 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          showErrors(form, err, { mapField: (f) => f.replace(/^rules\.\d+\.?/, '') || '(document)' });
        }
      });
    });
  }

  root.append(
    pageHeader('Rules', 'When all conditions hold, run the action. Rules can be switched off, tested and edited here.',
      admin ? button('New rule', { variant: 'primary', onclick: () => openEditor(null) }, 'plus') : null),
    body);
  await load();

  const editId = ctx.query.get('edit');
  if (editId && admin) {
    const rule = data.rules.find((r) => r.id === editId);
    if (rule) openEditor(rule);
  } else if (ctx.query.get('new') && admin) openEditor(null);

  let timer = null;
  let statusTimer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  ctx.subscribe((ev) => {
    if ((ev.topic === 'rule/fired' || ev.topic === 'rule/failed') && rows.has(ev.source)) {
      const item = rows.get(ev.source);
      const st = item.rule.status || (item.rule.status = {});
      if (ev.topic === 'rule/fired') {
        if (ev.data?.transition !== 'stop') st.fired = (st.fired ?? 0) + 1;
        if (ev.data?.transition === 'start') { st.holding = true; st.value = true; }
        if (ev.data?.transition === 'stop') { st.holding = false; st.value = false; }
        delete item.rule._failed;
      } else {
        item.rule._failed = ev.data?.error || 'failed';
      }
      paintRow(ev.source);
      item.row.classList.remove('new-row');
      void item.row.offsetWidth;
      item.row.classList.add('new-row');
    } else if (ev.topic === 'config/changed' && !editorOpen) {
      clearTimeout(timer);
      timer = setTimeout(() => load().catch((err) => reportError(err)), 300);
    } else if (ev.kind !== 'initialized' && ['io/input', 'io/output', 'io/virtual_input', 'trigger/manual', 'schedule'].includes(ev.topic) && !editorOpen) {
      // A source changed: the conditions' truth may have changed too. Refresh the statuses,
      // at most every 400 ms however busy the device is.
      statusTimer ??= setTimeout(() => { statusTimer = null; refreshStatus(); }, 400);
    }
  });
  ctx.onCleanup(() => clearTimeout(statusTimer));

  async function refreshStatus() {
    try {
      const res = await get('/api/v1/rules');
      if (!ctx.alive() || editorOpen) return;
      for (const rule of res.rules) {
        const item = rows.get(rule.id);
        if (!item) { await load(); return; }
        item.rule = { ...rule, _failed: item.rule._failed };
        paintRow(rule.id);
      }
    } catch { /* next change */ }
  }
}

function stripStatus(rule) {
  const copy = { ...rule };
  delete copy.status;
  delete copy._failed;
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Condition editor: one row with the kind's own fields

function conditionEditor(initial, data, onRemove) {
  let cond = { ...initial };
  const self = { el: null };
  let index = 0;
  let kindSel;
  let controls = {};

  function fieldsFor(kind, i) {
    const path = (f) => `conditions.${i}.${f}`;
    controls = {};
    const out = [];
    const portOpts = (list) => list.length ? list.map((p) => ({ value: p.id, label: `${p.name} (${p.id})` })) : [{ value: '', label: 'none on this device' }];
    switch (kind) {
      case 'input':
        controls.port = field({ label: 'Input', name: path('port'), type: 'select', value: cond.port, options: portOpts(data.inputs) });
        controls.state = field({ label: 'Is', name: path('state'), type: 'select', value: cond.state ?? 'active', options: [{ value: 'active', label: 'Active' }, { value: 'tamper', label: 'In tamper (cut/short)' }] });
        controls.require_armed = toggle({ label: 'Only when armed', name: path('require_armed'), checked: cond.require_armed ?? true });
        out.push(controls.port, controls.state, controls.require_armed);
        break;
      case 'virtual_input':
        controls.number = field({ label: 'Virtual input', name: path('number'), type: 'select', value: cond.number ?? 1, options: Array.from({ length: 32 }, (_, n) => ({ value: n + 1, label: `Virtual input ${n + 1}` })) });
        out.push(controls.number, h('p', { class: 'hint cond-note', text: 'Holds while it is on.' }));
        break;
      case 'manual_trigger':
        out.push(h('p', { class: 'hint cond-note', text: 'Holds while the manual trigger is on (Live I/O).' }));
        break;
      case 'schedule':
        controls.schedule = field({
          label: 'Schedule', name: path('schedule'), type: 'select', value: cond.schedule,
          options: data.schedules.length ? data.schedules.map((s) => ({ value: s.id, label: `${s.name} (${s.kind})` })) : [{ value: '', label: 'no schedules yet' }],
          hint: 'Interval: while active. Pulse: at each occurrence.',
        });
        out.push(controls.schedule);
        break;
      case 'recurrence':
        controls.interval_s = field({ label: 'Every (seconds)', name: path('interval_s'), type: 'number', value: cond.interval_s ?? 60, attrs: { min: 1, max: 2678400 }, hint: 'A pulse, counted from device start.' });
        out.push(controls.interval_s);
        break;
      case 'output':
        controls.port = field({ label: 'Output', name: path('port'), type: 'select', value: cond.port, options: portOpts(data.outputs), hint: 'Holds while the output is active.' });
        out.push(controls.port);
        break;
      case 'device_started':
        out.push(h('p', { class: 'hint cond-note', text: 'A pulse once, when the device starts.' }));
        break;
      case 'storage':
        controls.volume = field({ label: 'Volume', name: path('volume'), type: 'select', value: cond.volume ?? 'local', options: STORAGE_OPTIONS });
        controls.state = field({
          label: 'Is', name: path('state'), type: 'select', value: cond.state ?? 'failure',
          options: [{ value: 'full', label: 'Full' }, { value: 'failure', label: 'Failed' }],
          hint: 'Full: nothing old left to delete. Failed: missing, read-only or not mounted.',
        });
        out.push(controls.volume, controls.state);
        break;
      case 'video_source_lost':
        out.push(h('p', { class: 'hint cond-note', text: 'Holds while the camera stream is lost (camio keeps reconnecting).' }));
        break;
      case 'mqtt':
        controls.topic = field({ label: 'Topic filter', name: path('topic'), value: cond.topic ?? '', hint: '+ matches one level, # the rest: sensors/+/motion', attrs: { maxlength: 200, spellcheck: 'false', placeholder: 'sensors/+/motion' } });
        controls.payload = field({ label: 'Payload', name: path('payload'), value: cond.payload ?? '', hint: 'Empty: any payload.', attrs: { maxlength: 200, spellcheck: 'false' } });
        controls.match = field({ label: 'Match', name: path('match'), type: 'select', value: cond.match ?? 'exact', options: [{ value: 'exact', label: 'Exactly' }, { value: 'regex', label: 'Regular expression' }] });
        controls.mode = field({
          label: 'Kind', name: path('mode'), type: 'select', value: cond.mode ?? 'stateless',
          options: [{ value: 'stateless', label: 'Each message fires (momentary)' }, { value: 'stateful', label: 'Holds while the last message matches' }],
        });
        out.push(controls.topic, controls.payload, controls.match, controls.mode);
        break;
      default:
        out.push(h('p', { class: 'hint cond-note' }, 'This condition kind (', h('code', { text: kind }), ') has no form here; it is kept as it is: ', h('code', { text: JSON.stringify(cond) })));
    }
    controls.invert = toggle({ label: 'Invert (NOT)', name: path('invert'), checked: Boolean(cond.invert) });
    out.push(controls.invert);
    return out;
  }

  function read() {
    const kind = kindSel.value;
    const c = { kind, invert: controls.invert.control.checked };
    switch (kind) {
      case 'input':
        Object.assign(c, { port: controls.port.control.value, state: controls.state.control.value, require_armed: controls.require_armed.control.checked });
        break;
      case 'virtual_input':
        c.number = Number(controls.number.control.value);
        break;
      case 'schedule':
        c.schedule = controls.schedule.control.value;
        break;
      case 'recurrence':
        c.interval_s = intValue(controls.interval_s.control);
        break;
      case 'output':
        c.port = controls.port.control.value;
        break;
      case 'storage':
        Object.assign(c, { volume: controls.volume.control.value, state: controls.state.control.value });
        break;
      case 'mqtt': {
        const payload = controls.payload.control.value;
        Object.assign(c, { topic: controls.topic.control.value.trim(), payload: payload === '' ? null : payload, match: controls.match.control.value, mode: controls.mode.control.value });
        break;
      }
      case 'manual_trigger':
      case 'device_started':
      case 'video_source_lost':
        break;
      default:
        return { ...cond, invert: c.invert };
    }
    return c;
  }

  self.read = read;
  self.mount = (i, count) => {
    index = i;
    // Keep what was typed when renumbering.
    if (kindSel) cond = read();
    const known = CONDITION_KINDS.some(([k]) => k === cond.kind);
    const kinds = known ? CONDITION_KINDS : [...CONDITION_KINDS, [cond.kind, cond.kind]];
    const kindField = field({ label: 'Condition', name: `conditions.${i}.kind`, type: 'select', value: cond.kind, options: kinds.map(([v, l]) => ({ value: v, label: l + (MOMENTARY.has(v) ? ' — momentary' : '') })) });
    kindSel = kindField.control;
    const fieldsBox = h('div', { class: 'cond-fields' }, kindField, fieldsFor(cond.kind, i));
    kindSel.addEventListener('change', () => {
      const prevInvert = controls.invert?.control.checked;
      cond = { kind: kindSel.value, invert: prevInvert };
      fill(fieldsBox, kindField, fieldsFor(cond.kind, index));
    });
    const remove = h('button', {
      type: 'button', class: 'btn btn-ghost btn-icon', disabled: count <= 1,
      'aria-label': `Remove condition ${i + 1}`, title: count <= 1 ? 'A rule needs at least one condition' : 'Remove this condition',
      onclick: () => onRemove(self),
    }, icon('trash'));
    self.el = h('div', { class: 'cond', dataset: { field: `conditions.${i}` }, role: 'group', 'aria-label': `Condition ${i + 1}` },
      h('span', { class: 'cond-num', 'aria-hidden': 'true', text: String(i + 1) }),
      fieldsBox,
      remove,
      h('p', { class: 'field-error', hidden: true }));
    return self.el;
  };
  return self;
}

// ---------------------------------------------------------------------------------------------
// Action editor (the action and the fallback)

function actionEditor(prefix, initial, data) {
  let act = { ...initial };
  let mode = 'once';
  const box = h('div', { class: 'cond-fields' });
  const wide = h('div', { class: 'form-grid', hidden: true }); // full-width fields (templates)
  // The rule's action in while-active mode must be able to hold (the fallback runs once).
  const modeNote = h('p', { class: 'alert alert-warn', hidden: true });
  const el = h('div', { class: 'stack', dataset: { field: prefix } }, box, wide, modeNote, h('p', { class: 'field-error', hidden: true }));
  let controls = {};
  const known = ACTION_KINDS.some(([k]) => k === act.kind);
  const kinds = known ? ACTION_KINDS : [...ACTION_KINDS, [act.kind, act.kind]];
  const kindField = field({ label: prefix === 'fallback' ? 'Fallback action' : 'Action', name: `${prefix}.kind`, type: 'select', value: act.kind, options: kinds.map(([v, l]) => ({ value: v, label: l })) });
  kindField.control.addEventListener('change', () => {
    act = { kind: kindField.control.value, active: true, duration_ms: null };
    build();
  });

  function build() {
    controls = {};
    const path = (f) => `${prefix}.${f}`;
    const parts = [kindField];
    const wideParts = [];
    switch (act.kind) {
      case 'set_output': {
        controls.port = field({ label: 'Output', name: path('port'), type: 'select', value: act.port, options: data.outputs.length ? data.outputs.map((p) => ({ value: p.id, label: `${p.name} (${p.id})` })) : [{ value: '', label: 'none on this device' }] });
        controls.active = field({ label: 'Set to', name: path('active'), type: 'select', value: String(act.active !== false), options: [{ value: 'true', label: 'Active' }, { value: 'false', label: 'Idle (stop)' }] });
        controls.duration = field({ label: 'Duration (ms)', name: path('duration_ms'), type: 'number', value: act.duration_ms ?? '', hint: 'Empty: the output’s alarm time. 0: until stopped.', attrs: { min: 0, max: 86400000, placeholder: 'alarm time' } });
        parts.push(controls.port, controls.active, controls.duration);
        break;
      }
      case 'set_virtual_input': {
        controls.number = field({ label: 'Virtual input', name: path('number'), type: 'select', value: act.number ?? 1, options: Array.from({ length: 32 }, (_, n) => ({ value: n + 1, label: `Virtual input ${n + 1}` })) });
        controls.active = field({ label: 'Set to', name: path('active'), type: 'select', value: String(act.active !== false), options: [{ value: 'true', label: 'On' }, { value: 'false', label: 'Off' }] });
        controls.duration = field({ label: 'Duration (ms)', name: path('duration_ms'), type: 'number', value: act.duration_ms ?? '', hint: 'Empty: stays. Else reverts after this long.', attrs: { min: 1, max: 86400000, placeholder: 'stays' } });
        parts.push(controls.number, controls.active, controls.duration);
        break;
      }
      case 'notify': {
        controls.recipients = recipientList(path('recipients'), act.recipients || [], data.recipients);
        controls.subject = field({ label: 'Subject', name: path('subject'), value: act.subject ?? NOTIFY_SUBJECT, hint: TEMPLATE_HINT, attrs: { maxlength: 256, spellcheck: 'false' }, wide: true });
        controls.message = field({ label: 'Message', name: path('message'), type: 'textarea', value: act.message ?? NOTIFY_MESSAGE, hint: TEMPLATE_HINT, attrs: { maxlength: 4096, rows: 3, spellcheck: 'false' }, wide: true });
        wideParts.push(controls.recipients, controls.subject, controls.message);
        break;
      }
      case 'snapshot': {
        const count = act.count ?? SNAPSHOT.count;
        controls.count = field({ label: 'Snapshots', name: path('count'), type: 'number', value: count, hint: 'How many images, 1 to 20.', attrs: { min: 1, max: 20, step: 1 } });
        controls.interval = field({ label: 'Interval (ms)', name: path('interval_ms'), type: 'number', value: act.interval_ms ?? SNAPSHOT.interval_ms, hint: 'Between two images, 100 to 60000.', attrs: { min: 100, max: 60000, step: 1 } });
        controls.storage = field({
          label: 'Keep on', name: path('storage'), type: 'select', value: act.storage ?? SNAPSHOT.storage,
          options: [...STORAGE_OPTIONS, { value: 'none', label: 'Not kept' }],
          hint: 'Where the images are saved. Not kept: only sent to the recipients.',
        });
        controls.overlay = field({ label: 'Overlay text', name: path('overlay'), value: act.overlay ?? SNAPSHOT.overlay, hint: `An extra line stamped on these images, under the overlay text shown now; may be empty. ${TEMPLATE_HINT}`, attrs: { maxlength: 256, spellcheck: 'false' }, wide: true });
        controls.count.control.addEventListener('input', syncCount);
        parts.push(controls.count, controls.interval, controls.storage);
        wideParts.push(controls.overlay, ...sendFields('the images'));
        break;
      }
      case 'record': {
        controls.pre = field({ label: 'Before (s)', name: path('pre_s'), type: 'number', value: act.pre_s ?? RECORD.pre_s, hint: 'Seconds before the trigger, 0 to 60 (from the pre-alarm buffer).', attrs: { min: 0, max: 60, step: 1 } });
        controls.post = field({ label: 'After (s)', name: path('post_s'), type: 'number', value: act.post_s ?? RECORD.post_s, hint: 'Seconds after the trigger.', attrs: { min: 0, max: 3600, step: 1 } });
        controls.storage = field({ label: 'Keep on', name: path('storage'), type: 'select', value: act.storage ?? RECORD.storage, options: STORAGE_OPTIONS, hint: 'Where the recording is saved.' });
        parts.push(controls.pre, controls.post, controls.storage);
        wideParts.push(...sendFields('the recording'));
        break;
      }
      case 'overlay_text': {
        controls.text = field({ label: 'Overlay text', name: path('text'), value: act.text ?? OVERLAY.text, hint: `One line on the video, its snapshots and recordings; empty clears it. ${TEMPLATE_HINT}`, attrs: { maxlength: 128, spellcheck: 'false' }, wide: true });
        controls.duration = field({ label: 'Duration (s)', name: path('duration_s'), type: 'number', value: act.duration_s ?? OVERLAY.duration_s, hint: 'Clear the text after this long; 0: keep it until something changes it.', attrs: { min: 0, max: 86400, step: 1 } });
        parts.push(controls.duration);
        wideParts.push(controls.text);
        break;
      }
      case 'play_audio': {
        const names = data.clips.map((c) => c.name);
        if (act.clip && !names.includes(act.clip)) names.push(act.clip);
        controls.clip = field({ label: 'Clip', name: path('clip'), type: 'select', value: act.clip ?? names[0], options: names.length ? names.map((n) => ({ value: n, label: n })) : [{ value: '', label: 'no clips yet' }], hint: 'From the clip library (System).' });
        controls.repeat = field({ label: 'Repeat', name: path('repeat'), type: 'number', value: act.repeat ?? 1, hint: 'How many times in a row, 1 to 100 (while active: until the conditions end).', attrs: { min: 1, max: 100, step: 1 } });
        parts.push(controls.clip, controls.repeat);
        break;
      }
      default:
        parts.push(h('p', { class: 'hint cond-note' }, 'This action kind has no form here; it is kept as it is: ', h('code', { text: JSON.stringify(act) })));
    }
    fill(box, parts);
    fill(wide, wideParts);
    wide.hidden = !wideParts.length;
    controls.active?.control.addEventListener('change', syncDuration);
    syncDuration();
    syncCount();
    syncTexts();
  }

  /** Recipients for the media the action makes, and the texts of their message. */
  function sendFields(what) {
    const path = (f) => `${prefix}.${f}`;
    controls.recipients = recipientList(path('recipients'), act.recipients || [], data.recipients,
      `Optional: each gets ${what} attached, in its own delivery; up to ${MAX_RECIPIENTS}. The subject and message appear once one is chosen.`);
    controls.subject = field({ label: 'Subject', name: path('subject'), value: act.subject ?? NOTIFY_SUBJECT, hint: TEMPLATE_HINT, attrs: { maxlength: 256, spellcheck: 'false' }, wide: true });
    controls.message = field({ label: 'Message', name: path('message'), type: 'textarea', value: act.message ?? NOTIFY_MESSAGE, hint: TEMPLATE_HINT, attrs: { maxlength: 4096, rows: 3, spellcheck: 'false' }, wide: true });
    controls.recipients.addEventListener('change', syncTexts);
    controls.sendsMedia = true;
    return [controls.recipients, controls.subject, controls.message];
  }

  function syncTexts() {
    if (!controls.sendsMedia) return;
    const none = controls.recipients.value.length === 0;
    controls.subject.hidden = none;
    controls.message.hidden = none;
  }

  function syncCount() {
    // One snapshot: no interval to ask about (its value is kept).
    if (controls.interval) controls.interval.hidden = (intValue(controls.count.control) ?? 1) <= 1;
  }

  function syncDuration() {
    const whileActive = mode === 'while_active';
    if (controls.repeat) controls.repeat.hidden = whileActive;
    if (controls.post) {
      controls.post.querySelector('label').textContent = whileActive ? 'After the conditions end (s)' : 'After (s)';
      controls.post.querySelector('.hint').textContent = whileActive
        ? 'Recording runs while the conditions hold, then this many seconds more (0 to 3600).'
        : 'Seconds after the trigger, 0 to 3600; a new trigger meanwhile extends the recording.';
    }
    const kind = kindField.control.value;
    modeNote.hidden = !(prefix === 'action' && whileActive && !WHILE_ACTIVE_KINDS.has(kind));
    modeNote.textContent = modeNote.hidden ? '' : 'This action runs once per firing: choose the action mode Once.';
    if (!controls.duration) return;
    const stop = controls.active?.control.value === 'false' && act.kind === 'set_output';
    controls.duration.hidden = whileActive || stop;
  }

  function read() {
    const kind = kindField.control.value;
    if (kind === 'set_output') {
      const active = controls.active.control.value === 'true';
      const d = intValue(controls.duration.control);
      return { kind, port: controls.port.control.value, active, duration_ms: mode === 'while_active' || !active ? null : d };
    }
    if (kind === 'set_virtual_input') {
      const d = intValue(controls.duration.control);
      return { kind, number: Number(controls.number.control.value), active: controls.active.control.value === 'true', duration_ms: mode === 'while_active' ? null : d };
    }
    if (kind === 'notify') {
      return { kind, recipients: controls.recipients.value, subject: controls.subject.control.value, message: controls.message.control.value };
    }
    if (kind === 'play_audio') {
      return { kind, clip: controls.clip.control.value, repeat: intValue(controls.repeat.control) ?? 1 };
    }
    const texts = () => ({ recipients: controls.recipients.value, subject: controls.subject.control.value, message: controls.message.control.value });
    if (kind === 'snapshot') {
      return {
        kind,
        count: intValue(controls.count.control) ?? SNAPSHOT.count,
        interval_ms: intValue(controls.interval.control) ?? SNAPSHOT.interval_ms,
        overlay: controls.overlay.control.value,
        storage: controls.storage.control.value,
        ...texts(),
      };
    }
    if (kind === 'record') {
      return {
        kind,
        pre_s: intValue(controls.pre.control) ?? RECORD.pre_s,
        post_s: intValue(controls.post.control) ?? RECORD.post_s,
        storage: controls.storage.control.value,
        ...texts(),
      };
    }
    if (kind === 'overlay_text') {
      // While active the text shows while the conditions hold: no duration.
      const d = intValue(controls.duration.control) ?? OVERLAY.duration_s;
      return { kind, text: controls.text.control.value, duration_s: mode === 'while_active' ? 0 : d };
    }
    return act;
  }

  build();
  return {
    el,
    read,
    setMode(m) { mode = m; syncDuration(); },
  };
}

/**
 * The recipients of notify, snapshot and record: one checkbox each (a fieldset, like choice()), the ids the
 * action names that no longer exist kept as their own checkbox. .value is the checked ids.
 */
function recipientList(name, selected, recipients, hint = `Each gets its own delivery; up to ${MAX_RECIPIENTS}.`) {
  const known = new Set(recipients.map((r) => r.id));
  const items = [
    ...recipients.map((r) => ({ value: r.id, label: r.name, hint: `${r.id} · ${r.kind}${r.enabled === false ? ' · off' : ''}` })),
    ...selected.filter((id) => !known.has(id)).map((id) => ({ value: id, label: id, hint: 'not configured' })),
  ];
  const group = uid(name);
  const hintId = `${group}-hint`;
  const inputs = [];
  const options = items.map((o) => {
    const id = uid(group);
    const input = h('input', { type: 'checkbox', id, name, value: o.value, checked: selected.includes(o.value) });
    inputs.push(input);
    return h('label', { class: 'choice-option', for: id }, input,
      h('span', { class: 'choice-text' }, h('span', { class: 'choice-title', text: o.label }),
        h('span', { class: 'choice-hint', text: o.hint })));
  });
  const fs = h('fieldset', { class: 'field field-wide choice', dataset: { field: name }, 'aria-describedby': hintId },
    h('legend', { text: 'Recipients' }),
    items.length
      ? h('div', { class: 'choice-options' }, options)
      : h('p', { class: 'hint' }, 'No recipients yet. ', h('a', { href: '#/recipients', text: 'Add one on the Recipients page' }), ', then come back.'),
    h('p', { class: 'hint', id: hintId, text: hint }),
    h('p', { class: 'field-error', hidden: true }));
  fs.addEventListener('change', () => clearFieldError(fs));
  Object.defineProperty(fs, 'value', { get: () => inputs.filter((i) => i.checked).map((i) => i.value) });
  return fs;
}
