// Alarm out: every output with its configuration, Manual Control Start / Stop, an edit form per
// output, and the interlock groups.

import { api, can, get, patch, put, reportError, toast } from '../app.js';
import { namesFrom, rulesUsing } from '../lib/describe.js';
import {
  busy, button, choice, confirmDialog, empty, field, fill, fmtMs, formDialog, formError, h, intValue, lamp, pageHeader, showErrors, table, td, toggle,
} from '../lib/ui.js';

const RETRIGGER = {
  extend: ['Extend', 'Stays active; the end moves later'],
  restart: ['Restart', 'Goes idle and active again (a fresh edge)'],
  ignore: ['Ignore', 'The running activation continues unchanged'],
};
const POWER_ON = {
  off: ['Off', 'Idle after a restart'],
  on: ['On', 'Active after a restart'],
  restore: ['Restore', 'As before the restart, with the remaining alarm time'],
};

export async function render(root, ctx) {
  const admin = can('admin');
  const operator = can('operator');
  const body = h('div');
  const groupsBody = h('div');
  const liveCells = new Map();
  let data = null;

  async function load() {
    const [ports, schedules, rules, config] = await Promise.all([
      get('/api/v1/ports'), get('/api/v1/schedules'), get('/api/v1/rules'),
      admin ? get('/api/v1/config') : Promise.resolve(null),
    ]);
    data = {
      ports: ports.ports,
      outputs: ports.ports.filter((p) => p.direction === 'output'),
      schedules: schedules.schedules,
      rules: rules.rules,
      groups: config?.config?.interlock_groups ?? [],
      revision: config?.revision ?? null,
    };
    paint();
    paintGroups();
  }

  function paint() {
    liveCells.clear();
    if (!data.outputs.length) { fill(body, empty('This device has no alarm outputs.')); return; }
    const names = namesFrom(data.ports, data.schedules);
    const rows = data.outputs.map((port, index) => {
      const cfg = port.config;
      const stateCell = td('State', null);
      liveCells.set(port.id, { cell: stateCell, port, buttons: [] });
      const controls = operator ? manualControls(port) : null;
      paintState(port.id);
      const triggers = rulesUsing(data.rules, port.id).filter((r) => r.action?.port === port.id);
      return h('tr', { class: cfg.enabled ? '' : 'is-disabled' },
        td('Output', [h('strong', { class: 'nowrap', text: cfg.name }), h('span', { class: 'sub', text: `${port.id} · ch. ${index + 1}` })]),
        td('Signal / mode', [h('span', { class: 'nowrap', text: `${cfg.active_state === 'closed' ? 'Close' : 'Open'} · ${cfg.mode === 'pulse' ? 'Pulse' : 'Switch'}` }),
          cfg.mode === 'pulse' ? h('span', { class: 'sub', text: `${cfg.pulse_on_ms}/${cfg.pulse_off_ms} ms` }) : null]),
        td('Alarm time', cfg.follow_source
          ? [h('span', { class: 'nowrap', text: 'Follows source' }), h('span', { class: 'sub', text: cfg.alarm_time_ms === 0 ? 'else continuous' : `else ${fmtMs(cfg.alarm_time_ms)}` })]
          : h('span', { class: 'nowrap', text: cfg.alarm_time_ms === 0 ? 'Continuous' : fmtMs(cfg.alarm_time_ms) })),
        td('Re-trigger / power-on', [h('span', { class: 'nowrap', text: RETRIGGER[cfg.retrigger]?.[0] ?? cfg.retrigger }),
          h('span', { class: 'sub', text: `power-on ${(POWER_ON[cfg.power_on]?.[0] ?? cfg.power_on).toLowerCase()}` })]),
        td('Contact', [h('span', { class: 'nowrap', text: cfg.contact === 'wet' ? 'Wet' : 'Dry' }), cfg.rating ? h('span', { class: 'sub nowrap', text: cfg.rating }) : null]),
        td('Interlock / timed', h('span', { class: 'small' },
          cfg.interlock_group ? h('span', { class: 'nowrap' }, 'Interlock ', h('b', { text: cfg.interlock_group })) : null,
          cfg.interlock_group && cfg.timed_schedule ? h('br') : null,
          cfg.timed_schedule ? h('span', { class: 'nowrap' }, 'Timed by ', h('b', { text: names.schedules.get(cfg.timed_schedule) || cfg.timed_schedule })) : null,
          !cfg.interlock_group && !cfg.timed_schedule ? h('span', { class: 'muted', text: triggers.length ? `${triggers.length} rule${triggers.length > 1 ? 's' : ''}` : '—' }) : null)),
        stateCell,
        td('Manual control', controls),
        td('', admin ? h('div', { class: 'btn-group' }, button('Edit', { size: 'sm', onclick: () => edit(port), 'aria-label': `Edit ${cfg.name}` }, 'edit')) : null, 'actions'));
    });
    fill(body, table({
      caption: 'Alarm outputs',
      columns: [{ label: 'Output' }, { label: 'Valid signal / mode' }, { label: 'Alarm time' },
        { label: 'Re-trigger' }, { label: 'Contact' }, { label: 'Interlock / timed' },
        { label: 'State' }, { label: 'Manual control' }, { label: '', class: 'actions' }],
      rows,
    }));
  }

  function manualControls(port) {
    const start = button('Start', { size: 'sm', title: 'Active until stopped' }, 'play');
    const stop = button('Stop', { size: 'sm' }, 'stop');
    const go = (btn, active) => busy(btn, async () => {
      try {
        await put(`/api/v1/ports/${encodeURIComponent(port.id)}/state`, { active });
      } catch (err) { reportError(err, port.name); }
    });
    start.addEventListener('click', () => go(start, true));
    stop.addEventListener('click', () => go(stop, false));
    liveCells.get(port.id).buttons.push(start, stop);
    return h('div', { class: 'btn-group', role: 'group', 'aria-label': `Manual control of ${port.name}` }, start, stop);
  }

  function paintState(id) {
    const item = liveCells.get(id);
    if (!item) return;
    const p = item.port;
    const [tone, text] = !p.enabled ? ['off', 'Disabled'] : p.active ? ['alarm', 'Active'] : ['ok', 'Idle'];
    fill(item.cell, h('span', { class: 'row nowrap', 'aria-live': 'polite' }, lamp(tone, text), h('span', { text }), h('span', { class: 'muted mono', text: p.circuit })));
    for (const b of item.buttons) b.disabled = !p.enabled;
  }

  // Interlock groups (need the whole configuration: administrators only) ----------------------
  function paintGroups() {
    if (!admin) { fill(groupsBody); return; }
    const members = (gid) => data.outputs.filter((o) => o.config.interlock_group === gid).map((o) => o.name);
    const rows = data.groups.map((g) => h('tr', {},
      td('Group', h('strong', { class: 'mono', text: g.id })),
      td('Dead time', fmtMs(g.dead_time_ms) || '0 ms'),
      td('Outputs', members(g.id).join(', ') || h('span', { class: 'muted', text: 'none yet' })),
      td('', h('div', { class: 'btn-group' },
        button('Edit', { size: 'sm', onclick: () => editGroup(g) }, 'edit'),
        button('Delete', { size: 'sm', variant: 'danger-outline', disabled: members(g.id).length > 0, title: members(g.id).length ? 'Take the outputs out of the group first' : 'Delete the group', onclick: () => deleteGroup(g) }, 'trash')), 'actions')));
    fill(groupsBody,
      h('div', { class: 'section-head' },
        h('div', {}, h('h2', { text: 'Interlock groups' }),
          h('p', { class: 'muted small', text: 'Outputs of a group are never active together: activating one stops the others, then waits the dead time.' })),
        button('Add group', { variant: 'secondary', onclick: () => editGroup(null) }, 'plus')),
      rows.length
        ? table({ caption: 'Interlock groups', columns: [{ label: 'Group' }, { label: 'Dead time' }, { label: 'Outputs' }, { label: '', class: 'actions' }], rows })
        : empty('No interlock groups.'));
  }

  async function saveConfig(edit) {
    const current = await get('/api/v1/config');
    const doc = current.config;
    edit(doc);
    return api('PUT', '/api/v1/config', { body: { config: doc }, headers: { 'If-Match': String(current.revision) } });
  }

  function editGroup(group) {
    const id = field({ label: 'Group id', name: 'id', value: group?.id ?? '', hint: 'Letters, digits, - and _.', attrs: { required: true, pattern: '[A-Za-z0-9_-]{1,32}', readOnly: Boolean(group), class: 'mono' } });
    const dead = field({ label: 'Dead time (ms)', name: 'dead_time_ms', type: 'number', value: group?.dead_time_ms ?? 0, hint: 'Pause between one output going idle and another going active.', attrs: { min: 0, max: 60000 } });
    const form = h('form', { novalidate: true, id: 'group-form' }, formError(), h('div', { class: 'form-grid' }, id, dead));
    const { close, save } = formDialog({ title: group ? `Interlock group ${group.id}` : 'New interlock group', form });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const entry = { id: id.control.value.trim(), dead_time_ms: intValue(dead.control) ?? 0 };
      busy(save, async () => {
        try {
          await saveConfig((doc) => {
            const groups = doc.interlock_groups;
            const at = groups.findIndex((g) => g.id === entry.id);
            if (!group && at >= 0) throw Object.assign(new Error('exists'), { errors: [{ field: 'id', message: 'A group with this id exists.' }] });
            if (at >= 0) groups[at] = entry; else groups.push(entry);
          });
          close('saved');
          toast('Interlock group saved.', 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          showErrors(form, err, { mapField: (f) => f.replace(/^interlock_groups\.\d+\.?/, '') || 'id' });
        }
      });
    });
  }

  async function deleteGroup(group) {
    const ok = await confirmDialog({ title: 'Delete interlock group', message: `Delete the group ${group.id}?`, confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    try {
      await saveConfig((doc) => { doc.interlock_groups = doc.interlock_groups.filter((g) => g.id !== group.id); });
      toast('Interlock group deleted.', 'success');
      await load();
    } catch (err) { reportError(err, 'Delete group'); }
  }

  // Edit form -----------------------------------------------------------------------------------
  function edit(port) {
    const cfg = port.config;
    const interval = data.schedules.filter((s) => s.kind === 'interval');
    const name = field({ label: 'Name', name: 'name', value: cfg.name, attrs: { required: true, maxlength: 64 } });
    const description = field({ label: 'Description', name: 'description', value: cfg.description, attrs: { maxlength: 256 } });
    const enabled = toggle({ label: 'Enabled', name: 'enabled', checked: cfg.enabled, hint: 'A disabled output stays idle.' });
    const valid = choice({
      label: 'Valid signal', name: 'active_state', value: cfg.active_state,
      options: [
        { value: 'closed', label: 'Close', hint: 'The contact closes when active (usual relay)' },
        { value: 'open', label: 'Open', hint: 'The contact opens when active' },
      ],
    });
    const contact = choice({
      label: 'Contact type', name: 'contact', value: cfg.contact,
      options: [
        { value: 'dry', label: 'Dry contact', hint: 'A relay; the installer supplies power' },
        { value: 'wet', label: 'Wet contact', hint: 'The device outputs a voltage' },
      ],
    });
    const rating = field({ label: 'Rating', name: 'rating', value: cfg.rating, hint: 'Shown to the installer, e.g. 24 V DC 1 A.', attrs: { maxlength: 64 } });
    const pulseOn = field({ label: 'Pulse on (ms)', name: 'pulse_on_ms', type: 'number', value: cfg.pulse_on_ms, attrs: { min: 10, max: 3600000 } });
    const pulseOff = field({ label: 'Pulse off (ms)', name: 'pulse_off_ms', type: 'number', value: cfg.pulse_off_ms, attrs: { min: 10, max: 3600000 } });
    const pulseRow = h('div', { class: 'form-grid' }, pulseOn, pulseOff);
    const mode = choice({
      label: 'Mode', name: 'mode', value: cfg.mode,
      options: [
        { value: 'switch', label: 'Switch', hint: 'Steady while active' },
        { value: 'pulse', label: 'Pulse', hint: 'Alternates on and off while active' },
      ],
      onchange: (v) => { pulseRow.hidden = v !== 'pulse'; },
    });
    pulseRow.hidden = cfg.mode !== 'pulse';
    const follow = toggle({ label: 'Follow source', name: 'follow_source', checked: cfg.follow_source, hint: 'Active as long as the triggering condition lasts.' });
    const alarmHint = h('span');
    const alarm = field({ label: 'Alarm time (ms)', name: 'alarm_time_ms', type: 'number', value: cfg.alarm_time_ms, hint: '0 = continuous until stopped.', attrs: { min: 0, max: 86400000 } });
    alarm.append(h('p', { class: 'hint' }, alarmHint));
    const paintAlarm = () => {
      const v = intValue(alarm.control);
      alarmHint.textContent = v === 0 ? 'Continuous' : Number.isInteger(v) ? `= ${fmtMs(v)}` : '';
    };
    alarm.control.addEventListener('input', paintAlarm);
    paintAlarm();
    const retrigger = field({ label: 'Re-trigger policy', name: 'retrigger', type: 'select', value: cfg.retrigger, hint: 'What a new activation does while the output is active.', options: Object.entries(RETRIGGER).map(([v, [l, d]]) => ({ value: v, label: `${l}: ${d}` })) });
    const interlock = field({ label: 'Interlock group', name: 'interlock_group', type: 'select', value: cfg.interlock_group ?? '', hint: data.groups.length ? 'Never active together with the other outputs of the group.' : 'Add groups below the outputs table.', options: [{ value: '', label: 'None' }, ...data.groups.map((g) => ({ value: g.id, label: `${g.id} (dead time ${g.dead_time_ms} ms)` }))] });
    const powerOn = field({ label: 'Power-on state', name: 'power_on', type: 'select', value: cfg.power_on, options: Object.entries(POWER_ON).map(([v, [l, d]]) => ({ value: v, label: `${l}: ${d}` })) });
    const timed = field({ label: 'Timed output schedule', name: 'timed_schedule', type: 'select', value: cfg.timed_schedule ?? '', hint: 'Active while this schedule is active, whatever the events.', options: [{ value: '', label: 'None' }, ...interval.map((s) => ({ value: s.id, label: s.name }))] });

    const form = h('form', { novalidate: true, id: `edit-${port.id}` },
      formError(),
      h('div', { class: 'form-grid' }, name, description, enabled),
      h('div', { class: 'stack section-sm' }, valid, mode, pulseRow),
      h('div', { class: 'form-grid section-sm' }, alarm, follow, retrigger, powerOn, interlock, timed),
      h('div', { class: 'stack section-sm' }, contact, h('div', { class: 'form-grid' }, rating)));
    const { close, save } = formDialog({ title: `Alarm output ${port.id}`, form, drawer: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const changes = {
        name: name.control.value.trim(),
        description: description.control.value,
        enabled: enabled.control.checked,
        active_state: valid.value,
        contact: contact.value,
        rating: rating.control.value.trim(),
        mode: mode.value,
        pulse_on_ms: intValue(pulseOn.control),
        pulse_off_ms: intValue(pulseOff.control),
        follow_source: follow.control.checked,
        alarm_time_ms: intValue(alarm.control),
        retrigger: retrigger.control.value,
        interlock_group: interlock.control.value || null,
        power_on: powerOn.control.value,
        timed_schedule: timed.control.value || null,
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

  root.append(
    pageHeader('Alarm out', 'Relay and alarm outputs: valid signal, mode, alarm time and policies. Manual Control starts and stops an output.'),
    body,
    h('section', { class: 'section' }, groupsBody));
  await load();

  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  ctx.subscribe((ev) => {
    if (ev.topic === 'io/output' && liveCells.has(ev.source)) {
      const p = liveCells.get(ev.source).port;
      Object.assign(p, { active: ev.data.active, circuit: ev.data.circuit });
      paintState(ev.source);
    } else if (ev.topic === 'config/changed') {
      clearTimeout(timer);
      timer = setTimeout(() => load().catch((err) => reportError(err)), 300);
    }
  });
}
