// Schedules: RFC 5545 recurrence rules in a time zone, edited on a weekly grid (7 days x 48
// half-hours, click or drag to paint). The grid is stored as weekly entries, one per contiguous
// range, ranges with the same times merged into one entry with several BYDAY days; entries the
// grid cannot show (other rules, odd times) stay as raw entries below it.

import { can, del, get, post, put, reportError, toast } from '../app.js';
import {
  badge, busy, button, choice, clearFieldError, confirmDialog, empty, field, fill, formDialog, formError, h, icon, intValue, pageHeader, showErrors, slugify, table, td, uid,
} from '../lib/ui.js';
import {
  DAY_NAMES, DAY_SHORT, SLOTS, WEEK, cellsToEntries, describeEntry, entryRuns, pad, paintRuns, slotTime,
} from '../lib/weekgrid.js';

function timeZones(current) {
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
  const set = new Set(['UTC', ...zones]);
  if (current) set.add(current);
  return [...set].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)));
}

// ---------------------------------------------------------------------------------------------
// Page

export async function render(root, ctx) {
  const admin = can('admin');
  const body = h('div');
  const activeCells = new Map();
  let schedules = [];
  let deviceZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  let editorOpen = false;
  get('/api/v1/system').then((s) => { deviceZone = s?.identity?.timezone || deviceZone; }).catch(() => {});

  async function load() {
    schedules = (await get('/api/v1/schedules')).schedules;
    paint();
  }

  function paint() {
    activeCells.clear();
    if (!schedules.length) {
      fill(body, empty('No schedules yet. A schedule arms inputs, drives timed outputs or fires rules at set times.',
        admin ? button('Create a schedule', { variant: 'primary', onclick: () => openEditor(null) }, 'plus') : null));
      return;
    }
    const rows = schedules.map((s) => {
      const stateCell = td('Now', null);
      activeCells.set(s.id, { cell: stateCell, schedule: s });
      paintActive(s.id);
      return h('tr', {},
        td('Schedule', [h('strong', { text: s.name }), h('span', { class: 'sub', text: s.id })]),
        td('Kind', s.kind === 'pulse' ? 'Pulse' : 'Interval'),
        td('When', h('div', { class: 'stack-xs' },
          s.kind === 'interval' ? miniWeek(s) : null,
          h('span', { class: 'small', text: s.entries.slice(0, 3).map((e) => describeEntry(e, s.kind)).join('; ') + (s.entries.length > 3 ? ` (+${s.entries.length - 3})` : '') }))),
        td('Time zone', h('span', { class: 'nowrap', text: s.timezone })),
        stateCell,
        td('', admin ? h('div', { class: 'btn-group' },
          button('Edit', { size: 'sm', onclick: () => openEditor(s) }, 'edit'),
          h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', 'aria-label': `Delete schedule ${s.name}`, title: 'Delete', onclick: () => remove(s) }, icon('trash'))) : null, 'actions'));
    });
    fill(body, table({
      caption: 'Schedules',
      columns: [{ label: 'Schedule' }, { label: 'Kind' }, { label: 'When' }, { label: 'Time zone' }, { label: 'Now' }, { label: '', class: 'actions' }],
      rows,
    }));
  }

  function paintActive(id) {
    const item = activeCells.get(id);
    if (!item) return;
    const s = item.schedule;
    fill(item.cell, h('span', { 'aria-live': 'polite' },
      s.kind === 'pulse' ? badge('Pulse', 'muted') : s.active ? badge('Active', 'alarm') : badge('Inactive', 'ok')));
  }

  async function remove(s) {
    const ok = await confirmDialog({ title: 'Delete schedule', message: `Delete the schedule “${s.name}”? Inputs, outputs or rules that use it must be changed first.`, confirmLabel: 'Delete schedule', danger: true });
    if (!ok) return;
    try {
      await del(`/api/v1/schedules/${encodeURIComponent(s.id)}`);
      toast(`Schedule ${s.name} deleted.`, 'success');
      await load();
    } catch (err) { reportError(err, 'Delete'); }
  }

  // Editor ----------------------------------------------------------------------------------
  function openEditor(schedule) {
    editorOpen = true;
    const isNew = !schedule;
    const draft = schedule ? structuredClone(schedule) : { id: '', name: '', kind: 'interval', timezone: deviceZone, entries: [] };
    const name = field({ label: 'Name', name: 'name', value: draft.name, attrs: { required: true, maxlength: 64, placeholder: 'e.g. Office hours' } });
    const idField = field({ label: 'Schedule id', name: 'id', value: draft.id, hint: isNew ? 'Filled in from the name.' : 'The id cannot change.', attrs: { required: true, maxlength: 32, readOnly: !isNew, class: 'mono', spellcheck: 'false' } });
    let idTouched = !isNew;
    idField.control.addEventListener('input', () => { idTouched = true; });
    name.control.addEventListener('input', () => {
      if (!idTouched) {
        idField.control.value = slugify(name.control.value, schedules.map((s) => s.id));
        clearFieldError(idField);
      }
    });
    const tz = field({ label: 'Time zone', name: 'timezone', type: 'select', value: draft.timezone, options: timeZones(draft.timezone).map((z) => ({ value: z, label: z.replaceAll('_', ' ') })), hint: 'Times are local to this zone (summer time included).' });

    // Split entries: what the grid shows, and the rest.
    const cells = new Array(WEEK).fill(false);
    const advanced = [];
    for (const entry of draft.entries) {
      const runs = draft.kind === 'interval' ? entryRuns(entry) : null;
      if (runs) paintRuns(cells, runs); else advanced.push(entry);
    }
    const grid = weekGrid(cells);
    const gridSection = h('div', { class: 'stack', dataset: { field: 'grid' } },
      h('p', { class: 'hint' }, h('span', { class: 'legend' }, h('i'), 'Active'),
        ' · Click or drag to paint; drag from a painted cell to erase. Keyboard: arrow keys move, Space toggles, Shift+arrow paints.'),
      h('div', { class: 'week-tools' },
        h('span', { class: 'muted small', text: 'Presets:' }),
        button('Weekdays 08–18', { size: 'sm', onclick: () => grid.preset((d, s) => d < 5 && s >= 16 && s < 36) }),
        button('Every night 22–06', { size: 'sm', onclick: () => grid.preset((d, s) => s >= 44 || s < 12) }),
        button('Clear', { size: 'sm', variant: 'ghost', onclick: () => grid.preset(() => false) })),
      h('div', { class: 'week-wrap' }, grid.el),
      h('p', { class: 'field-error', hidden: true }));

    const entryList = h('div', { class: 'entries' });
    const entryRows = [];
    const addEntry = button('Add entry', { size: 'sm' }, 'plus');
    const advancedTitle = h('h3', {});
    const advancedHint = h('p', { class: 'hint' });
    function entryRow(entry) {
      const start = field({ label: 'Start (local time)', name: 'start', type: 'datetime-local', value: (entry.start || '').slice(0, 19), attrs: { step: 1, required: true } });
      const duration = field({ label: 'Duration (s)', name: 'duration_s', type: 'number', value: entry.duration_s ?? 0, attrs: { min: 0, max: 31622400 } });
      const rrule = field({ label: 'Recurrence (RRULE)', name: 'rrule', value: entry.rrule ?? '', attrs: { class: 'mono', spellcheck: 'false', placeholder: 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR' } });
      const row = { start, duration, rrule };
      const removeBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-icon', 'aria-label': 'Remove this entry', onclick: () => { entryRows.splice(entryRows.indexOf(row), 1); row.el.remove(); } }, icon('trash'));
      row.el = h('div', { class: 'entry' }, start, duration, rrule, removeBtn);
      row.read = () => {
        let s = start.control.value;
        if (s && s.length === 16) s += ':00';
        return { start: s, duration_s: intValue(duration.control) ?? 0, rrule: rrule.control.value.trim() || null };
      };
      row.assign = (index) => {
        start.dataset.field = `entries.${index}.start`;
        duration.dataset.field = `entries.${index}.duration_s`;
        rrule.dataset.field = `entries.${index}.rrule`;
      };
      return row;
    }
    for (const e of advanced) { const r = entryRow(e); entryRows.push(r); entryList.append(r.el); }
    addEntry.addEventListener('click', () => {
      const now = new Date();
      const r = entryRow({ start: `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T08:00:00`, duration_s: kind.value === 'pulse' ? 0 : 3600, rrule: 'FREQ=DAILY' });
      entryRows.push(r);
      entryList.append(r.el);
      r.start.control.focus();
    });

    const kind = choice({
      label: 'Kind', name: 'kind', value: draft.kind,
      options: [
        { value: 'interval', label: 'Interval', hint: 'A state: active during the painted times (arming, timed outputs)' },
        { value: 'pulse', label: 'Pulse', hint: 'A moment: fires rules at each occurrence (e.g. a daily siren test)' },
      ],
      onchange: () => syncKind(),
    });
    function syncKind() {
      const pulse = kind.value === 'pulse';
      gridSection.hidden = pulse;
      advancedTitle.textContent = pulse ? 'Occurrences' : 'Other entries (advanced)';
      advancedHint.textContent = pulse
        ? 'Each entry fires at its start time and then as its RRULE repeats (e.g. FREQ=DAILY, FREQ=WEEKLY;BYDAY=MO). Duration is not used.'
        : 'Entries the weekly grid cannot show: other recurrences (RFC 5545 RRULE), dates, odd times. Each is active from its start for its duration.';
    }
    syncKind();

    const form = h('form', { novalidate: true, id: uid('sched') },
      formError(),
      h('div', { class: 'form-grid' }, name, idField, tz),
      h('div', { class: 'section-sm' }, kind),
      h('div', { class: 'section-sm' }, gridSection),
      h('div', { class: 'section-sm stack', dataset: { field: 'entries' } },
        h('div', {}, advancedTitle, advancedHint),
        entryList,
        h('div', { class: 'row' }, addEntry),
        h('p', { class: 'field-error', hidden: true })));

    const { close, save } = formDialog({
      title: isNew ? 'New schedule' : `Schedule ${draft.name}`, form, drawer: true, wide: true,
      saveText: isNew ? 'Create schedule' : 'Save',
      onClose: () => { editorOpen = false; grid.dispose(); },
    });
    if (isNew) queueMicrotask(() => name.control.focus());

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const pulse = kind.value === 'pulse';
      const gridEntries = pulse ? [] : cellsToEntries(grid.cells);
      const offset = gridEntries.length;
      entryRows.forEach((r, k) => r.assign(offset + k));
      const entries = [...gridEntries, ...entryRows.map((r) => r.read())];
      const problems = [];
      if (!name.control.value.trim()) problems.push({ field: 'name', message: 'Give the schedule a name.' });
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(idField.control.value.trim())) problems.push({ field: 'id', message: 'Use 1 to 32 letters, digits, - or _.' });
      if (!entries.length) problems.push({ field: pulse ? 'entries' : 'grid', message: pulse ? 'Add at least one occurrence.' : 'Paint at least one time range on the grid (or add an entry).' });
      if (entries.length > 64) problems.push({ field: 'grid', message: `At most 64 entries (this has ${entries.length}); simplify the grid.` });
      if (problems.length) { showErrors(form, { errors: problems }); return; }
      const doc = { id: idField.control.value.trim(), name: name.control.value.trim(), kind: kind.value, timezone: tz.control.value, entries };
      busy(save, async () => {
        try {
          if (isNew) await post('/api/v1/schedules', doc);
          else await put(`/api/v1/schedules/${encodeURIComponent(doc.id)}`, doc);
          close('saved');
          toast(`Schedule ${doc.name} saved.`, 'success');
          await load();
        } catch (err) {
          if (err.status === 401) return;
          showErrors(form, err, {
            mapField: (f) => {
              const rel = f.replace(/^schedules\.\d+\.?/, '');
              const m = /^entries\.(\d+)/.exec(rel);
              if (m && Number(m[1]) < offset) return 'grid';
              return rel || '(document)';
            },
          });
        }
      });
    });
  }

  root.append(
    pageHeader('Schedules', 'Weekly times for arming inputs, timed outputs and rules. RFC 5545 recurrence rules in a time zone.',
      admin ? button('New schedule', { variant: 'primary', onclick: () => openEditor(null) }, 'plus') : null),
    body);
  await load();

  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  ctx.subscribe((ev) => {
    if (ev.topic === 'schedule' && activeCells.has(ev.source) && ev.data && 'active' in ev.data) {
      activeCells.get(ev.source).schedule.active = ev.data.active;
      paintActive(ev.source);
    } else if (ev.topic === 'config/changed' && !editorOpen) {
      clearTimeout(timer);
      timer = setTimeout(() => load().catch((err) => reportError(err)), 300);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The weekly grid widget

function weekGrid(cells) {
  const el = h('div', { class: 'week', role: 'grid', 'aria-label': 'Weekly schedule: 7 days by 48 half-hours', 'aria-multiselectable': 'true' });
  const cellEls = [];
  el.append(h('div', { role: 'row', class: 'wrow' },
    h('span', { role: 'columnheader', class: 'hour corner', 'aria-hidden': 'true' }),
    Array.from({ length: 12 }, (_, i) => h('span', { class: 'hour', 'aria-hidden': 'true', text: pad(i * 2) }))));
  for (let d = 0; d < 7; d += 1) {
    const row = h('div', { role: 'row', class: 'wrow' }, h('span', { role: 'rowheader', class: 'day', title: DAY_NAMES[d], text: DAY_SHORT[d] }));
    for (let s = 0; s < SLOTS; s += 1) {
      const i = d * SLOTS + s;
      const c = h('div', {
        role: 'gridcell', tabindex: i === 0 ? '0' : '-1',
        class: ['cell', s % 2 === 0 && 'h', s === SLOTS - 1 && 'last', d === 6 && 'bottom'],
        'aria-label': `${DAY_NAMES[d]} ${slotTime(s)}–${slotTime(s + 1)}`,
        dataset: { i: String(i) },
      });
      cellEls.push(c);
      row.append(c);
    }
    el.append(row);
  }
  const set = (i, on) => {
    cells[i] = on;
    cellEls[i].classList.toggle('on', on);
    cellEls[i].setAttribute('aria-selected', String(on));
  };
  cells.forEach((on, i) => set(i, on));

  let painting = null; // the value being painted while dragging
  let lastPointer = 'mouse';
  const indexOf = (target) => {
    const c = target?.closest?.('.cell');
    return c ? Number(c.dataset.i) : null;
  };
  el.addEventListener('pointerdown', (e) => {
    lastPointer = e.pointerType;
    if (e.pointerType === 'touch' || e.button !== 0) return;
    const i = indexOf(e.target);
    if (i === null) return;
    e.preventDefault();
    painting = !cells[i];
    set(i, painting);
    focusCell(i);
  });
  el.addEventListener('pointerover', (e) => {
    if (painting === null) return;
    const i = indexOf(e.target);
    if (i !== null) set(i, painting);
  });
  const stop = () => { painting = null; };
  const listening = new AbortController();
  window.addEventListener('pointerup', stop, { signal: listening.signal });
  window.addEventListener('pointercancel', stop, { signal: listening.signal });
  el.addEventListener('click', (e) => {
    if (lastPointer === 'mouse' || lastPointer === 'pen') return; // painted on pointerdown
    const i = indexOf(e.target);
    if (i !== null) { set(i, !cells[i]); focusCell(i); }
  });

  let focused = 0;
  function focusCell(i) {
    cellEls[focused].tabIndex = -1;
    focused = i;
    cellEls[i].tabIndex = 0;
    cellEls[i].focus({ preventScroll: false });
  }
  el.addEventListener('keydown', (e) => {
    const i = indexOf(e.target);
    if (i === null) return;
    const d = Math.floor(i / SLOTS);
    const s = i % SLOTS;
    let next = null;
    if (e.key === 'ArrowRight') next = d * SLOTS + Math.min(SLOTS - 1, s + 1);
    else if (e.key === 'ArrowLeft') next = d * SLOTS + Math.max(0, s - 1);
    else if (e.key === 'ArrowDown') next = Math.min(6, d + 1) * SLOTS + s;
    else if (e.key === 'ArrowUp') next = Math.max(0, d - 1) * SLOTS + s;
    else if (e.key === 'Home') next = d * SLOTS;
    else if (e.key === 'End') next = d * SLOTS + SLOTS - 1;
    else if (e.key === ' ' || e.key === 'Enter') {
      e.preventDefault();
      set(i, !cells[i]);
      return;
    }
    if (next !== null) {
      e.preventDefault();
      if (e.shiftKey) set(next, cells[i]);
      focusCell(next);
    }
  });
  return {
    el,
    cells,
    dispose: () => listening.abort(),
    preset(fn) {
      for (let i = 0; i < WEEK; i += 1) set(i, Boolean(fn(Math.floor(i / SLOTS), i % SLOTS)));
    },
  };
}

function miniWeek(schedule) {
  const cells = new Array(WEEK).fill(false);
  for (const entry of schedule.entries) {
    const runs = entryRuns(entry);
    if (runs) paintRuns(cells, runs);
  }
  const el = h('div', { class: 'mini-week', 'aria-hidden': 'true' });
  for (let d = 0; d < 7; d += 1) {
    for (let s = 0; s < SLOTS; s += 2) {
      const on = cells[d * SLOTS + s] || cells[d * SLOTS + s + 1];
      el.append(h('span', { class: on ? 'on' : '' }));
    }
  }
  return el;
}
