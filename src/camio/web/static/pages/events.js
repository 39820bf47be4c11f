// Event log: filter by topic, source and time; newest first with "Load older" paging; a live
// tail from the event stream; CSV export with the same filters.

import { get, live, navigate } from '../app.js';
import { topicMatches } from '../lib/live.js';
import {
  busy, button, empty, field, fill, fmtCause, h, icon, lamp, pageHeader, td, timeEl, toggle,
} from '../lib/ui.js';

const TOPICS = [
  ['', 'All topics'],
  ['io/*', 'All I/O (io/*)'],
  ['io/input', 'Alarm inputs'],
  ['io/output', 'Alarm outputs'],
  ['io/virtual_input', 'Virtual inputs'],
  ['trigger/manual', 'Manual trigger'],
  ['schedule*', 'Schedules'],
  ['rule/*', 'Rules (fired and failed)'],
  ['rule/failed', 'Rule failures'],
  ['config/changed', 'Configuration changes'],
  ['device/*', 'Device start and stop'],
  ['audit/*', 'Audit (logins, changes)'],
];
const PAGE_SIZES = [50, 100, 200, 500];
const MAX_ROWS = 3000;

function localInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function toIso(local) {
  if (!local) return '';
  const d = new Date(local); // datetime-local is read as the browser's local time
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

export async function render(root, ctx) {
  const q = ctx.query;
  const filters = {
    topic: q.get('topic') || '',
    source: q.get('source') || '',
    since: q.get('since') || '',
    until: q.get('until') || '',
    limit: Number(q.get('limit')) || 100,
  };
  const tailOn = q.get('live') !== '0' && !filters.until;

  // Filter form ---------------------------------------------------------------------------
  const knownTopic = TOPICS.some(([v]) => v === filters.topic);
  const topic = field({ label: 'Topic', name: 'topic', type: 'select', value: filters.topic, options: [...TOPICS.map(([v, l]) => ({ value: v, label: l })), ...(knownTopic ? [] : [{ value: filters.topic, label: filters.topic }])] });
  const source = field({ label: 'Source', name: 'source', value: filters.source, attrs: { placeholder: 'e.g. in1, out1, a rule id', spellcheck: 'false' } });
  const since = field({ label: 'From', name: 'since', type: 'datetime-local', value: localInput(filters.since) });
  const until = field({ label: 'Until', name: 'until', type: 'datetime-local', value: localInput(filters.until) });
  const limit = field({ label: 'Per page', name: 'limit', type: 'select', value: filters.limit, options: PAGE_SIZES.map((n) => ({ value: n, label: String(n) })) });
  const apply = button('Apply', { type: 'submit', variant: 'primary' });
  const reset = button('Reset', { variant: 'ghost', onclick: () => navigate('#/events') });
  const form = h('form', { class: 'card filters', role: 'search', 'aria-label': 'Filter events' },
    topic, source, since, until, limit, h('div', { class: 'actions' }, apply, reset));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (topic.control.value) params.set('topic', topic.control.value);
    if (source.control.value.trim()) params.set('source', source.control.value.trim());
    if (since.control.value) params.set('since', toIso(since.control.value));
    if (until.control.value) params.set('until', toIso(until.control.value));
    if (Number(limit.control.value) !== 100) params.set('limit', limit.control.value);
    if (!tail.control.checked) params.set('live', '0');
    const qs = params.toString();
    navigate(`#/events${qs ? `?${qs}` : ''}`);
  });

  function apiQuery(extra = {}) {
    const p = new URLSearchParams();
    if (filters.topic) p.set('topic', filters.topic);
    if (filters.source) p.set('source', filters.source);
    if (filters.since) p.set('since', filters.since);
    if (filters.until) p.set('until', filters.until);
    for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) p.set(k, String(v));
    return p;
  }

  // Toolbar -------------------------------------------------------------------------------
  const tail = toggle({ label: 'Live tail', name: 'live', checked: tailOn, hint: filters.until ? 'Off while an end time is set.' : '', attrs: { disabled: Boolean(filters.until) } });
  const count = h('span', { class: 'muted', 'aria-live': 'polite' });
  const csvParams = apiQuery({ limit: 1000, order: 'desc' });
  const csv = h('a', { class: 'btn btn-secondary', href: `/api/v1/events.csv?${csvParams}`, download: 'camio-events.csv' }, icon('download'), h('span', { text: 'Export CSV' }));
  const toolbar = h('div', { class: 'toolbar' }, tail, count, h('span', { class: 'spacer' }), csv);

  // Table ---------------------------------------------------------------------------------
  const tbody = h('tbody');
  const tableWrap = h('div', { class: 'table-wrap' },
    h('table', { class: 'table table-stack' },
      h('caption', { class: 'sr-only', text: 'Events, newest first' }),
      h('thead', {}, h('tr', {}, ['#', 'Time', 'Topic', 'Source', 'Details', 'Cause'].map((l) => h('th', { scope: 'col', text: l })))),
      tbody));
  const listBox = h('div', {}, tableWrap);
  const older = button('Load older', { variant: 'secondary' }, 'download');
  const pager = h('div', { class: 'pager' }, older);
  let minId = null;
  let maxId = 0;
  let rowsShown = 0;

  function addRows(events, { prepend = false, fresh = false } = {}) {
    const nodes = events.map((ev) => eventRow(ev, fresh));
    if (prepend) tbody.prepend(...nodes); else tbody.append(...nodes);
    for (const ev of events) {
      if (minId === null || ev.id < minId) minId = ev.id;
      if (ev.id > maxId) maxId = ev.id;
    }
    rowsShown += events.length;
    if (rowsShown > MAX_ROWS) {
      while (rowsShown > MAX_ROWS && tbody.lastElementChild) {
        tbody.lastElementChild.remove();
        rowsShown -= 1;
      }
      minId = Number(tbody.lastElementChild?.dataset.id ?? minId);
    }
    paintCount();
  }
  function paintCount() {
    count.textContent = rowsShown ? `${rowsShown} event${rowsShown === 1 ? '' : 's'} shown` : '';
    listBox.hidden = false;
    if (!rowsShown) fill(listBox, empty(filters.topic || filters.source || filters.since || filters.until ? 'No events match these filters.' : 'No events yet.'));
    else if (!listBox.contains(tableWrap)) fill(listBox, tableWrap);
  }

  async function loadOlder() {
    const res = await get(`/api/v1/events?${apiQuery({ order: 'desc', limit: filters.limit, before: minId ?? undefined })}`);
    addRows(res.events);
    older.hidden = res.events.length < filters.limit;
  }
  older.addEventListener('click', () => busy(older, () => loadOlder().catch((err) => { count.textContent = err.message; })));

  // Catching up (after a reconnect, or when the tail is switched on): fetch what was logged
  // after the newest row; live events that arrive meanwhile wait, then follow in order.
  let backfilling = false;
  let waiting = [];
  async function backfill() {
    if (backfilling) return;
    backfilling = true;
    try {
      for (let guard = 0; guard < 5; guard += 1) {
        const res = await get(`/api/v1/events?${apiQuery({ order: 'asc', limit: 1000, after: maxId })}`);
        if (!ctx.alive()) return;
        const fresh = res.events.filter((ev) => ev.id > maxId);
        if (fresh.length) addRows(fresh.reverse(), { prepend: true, fresh: true });
        if (res.events.length < 1000) break;
      }
    } catch { /* shown by the connection indicator */ } finally {
      backfilling = false;
      const queued = waiting.filter((ev) => ev.id > maxId).sort((a, b) => b.id - a.id);
      waiting = [];
      if (queued.length && ctx.alive()) addRows(queued, { prepend: true, fresh: true });
    }
  }

  // On a phone the filters fold away (open when some are set); on wider screens they show.
  const filtered = Boolean(filters.topic || filters.source || filters.since || filters.until);
  const wide = window.matchMedia('(min-width: 761px)').matches;
  const filterBox = h('details', { class: 'filters-box', open: wide || filtered },
    h('summary', {}, icon('events'), h('span', { text: filtered ? 'Filters (active)' : 'Filters' })), form);
  root.append(
    pageHeader('Event log', 'Everything the device did and why: inputs, outputs, rules, schedules, configuration and logins.'),
    filterBox, toolbar, listBox, pager);

  await loadOlder();

  // Live tail -------------------------------------------------------------------------------
  const matches = (ev) => ev.kind !== 'initialized'
    && topicMatches(filters.topic, ev.topic)
    && (!filters.source || ev.source === filters.source)
    && (!filters.since || new Date(ev.time) >= new Date(filters.since));
  ctx.subscribe((ev) => {
    if (!tail.control.checked || !matches(ev) || ev.id <= maxId) return;
    if (backfilling) { waiting.push(ev); return; }
    addRows([ev], { prepend: true, fresh: true });
  });
  let wasLive = live.status === 'live';
  ctx.onLiveStatus((status) => {
    if (status === 'live' && !wasLive && tail.control.checked) backfill();
    wasLive = status === 'live';
  });
  tail.control.addEventListener('change', () => {
    if (tail.control.checked) backfill();
  });
}

// ---------------------------------------------------------------------------------------------

function eventRow(ev, fresh) {
  const d = ev.data || {};
  let tone = null;
  if ('active' in d) tone = d.tamper ? 'warn' : d.active ? 'alarm' : 'ok';
  if (ev.topic === 'rule/failed' || ev.topic === 'audit/login_failed') tone = 'alarm';
  return h('tr', { class: fresh ? 'new-row' : '', dataset: { id: String(ev.id) } },
    td('#', h('span', { class: 'mono faint', text: String(ev.id) }), 'num'),
    td('Time', h('span', { class: 'nowrap' }, timeEl(ev.time))),
    td('Topic', h('span', { class: 'row nowrap' }, tone ? lamp(tone, '') : null, h('span', { class: 'topic', text: ev.topic }))),
    td('Source', h('span', { class: 'mono', text: ev.source })),
    td('Details', h('span', { class: 'ev-data', text: describeData(ev) })),
    td('Cause', h('span', { class: 'small', text: ev.cause ? fmtCause(ev.cause) : '—' })));
}

function describeData(ev) {
  const d = ev.data || {};
  switch (ev.topic) {
    case 'io/input':
      return [d.active ? 'active' : 'normal', d.circuit && `circuit ${d.circuit}`, d.tamper && 'tamper', d.armed === false && 'disarmed'].filter(Boolean).join(' · ');
    case 'io/output':
      return [d.active ? 'active' : 'idle', d.circuit && `circuit ${d.circuit}`, d.remaining_ms && `${(d.remaining_ms / 1000).toFixed(1)} s`, d.latency_us !== undefined && `latency ${d.latency_us} µs`].filter(Boolean).join(' · ');
    case 'io/virtual_input':
    case 'trigger/manual':
      return d.active ? 'on' : 'off';
    case 'schedule':
      return 'active' in d ? (d.active ? 'active' : 'inactive') : 'pulse';
    case 'rule/fired':
      return d.transition === 'start' ? 'started (while active)' : d.transition === 'stop' ? 'stopped' : 'fired';
    case 'rule/failed':
      return d.error || 'failed';
    case 'config/changed':
      return `revision ${d.revision}`;
    default:
      return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
  }
}
