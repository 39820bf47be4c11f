// The weekly grid of the schedule editor and its RFC 5545 entries, as pure functions (no DOM),
// so they can be tested outside a browser.
//
// The grid is 7 days x 48 half-hours, Monday first. Painted cells become weekly entries
// {start, duration_s, rrule}: one per contiguous range (a range may cross midnight and the end
// of the week), ranges with the same start time and length merged into one entry with several
// BYDAY days. Entries the grid cannot show (other rules, odd times, later starts) are left
// alone by the editor.

export const DAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
export const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
export const DAY_SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
export const SLOTS = 48; // half-hours per day
export const WEEK = 7 * SLOTS;
export const SLOT_S = 1800;
// A Monday in the past: grid entries start on the weekday of their first day in this week.
const REF = { y: 2024, m: 1, d: 1 };

export const pad = (n) => String(n).padStart(2, '0');

export function parseStart(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(String(text || ''));
  if (!m) return null;
  return { y: +m[1], m: +m[2], d: +m[3], hh: +m[4], mm: +m[5], ss: +(m[6] || 0) };
}

export function weekday({ y, m, d }) {
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7; // Monday = 0
}

export function parseRrule(text) {
  if (!text) return null;
  const parts = {};
  for (const part of String(text).replace(/^RRULE:/i, '').split(';')) {
    if (!part) continue;
    const [k, v] = part.split('=');
    if (!k || v === undefined) return null;
    parts[k.trim().toUpperCase()] = v.trim().toUpperCase();
  }
  return parts;
}

/** The grid runs [day, slot, length] of an entry, or null when the grid cannot show it. */
export function entryRuns(entry, today = new Date()) {
  const start = parseStart(entry.start);
  const rule = parseRrule(entry.rrule);
  if (!start || !rule || start.ss !== 0 || start.mm % 30 !== 0) return null;
  const dur = entry.duration_s;
  if (!Number.isInteger(dur) || dur <= 0 || dur % SLOT_S !== 0 || dur > 7 * 86400) return null;
  if (!['WEEKLY', 'DAILY'].includes(rule.FREQ)) return null;
  for (const key of Object.keys(rule)) {
    if (!['FREQ', 'BYDAY', 'INTERVAL', 'WKST'].includes(key)) return null;
  }
  if (rule.INTERVAL && rule.INTERVAL !== '1') return null;
  if (Date.UTC(start.y, start.m - 1, start.d) > today.getTime()) return null; // starts later
  let days;
  if (rule.BYDAY) {
    const codes = rule.BYDAY.split(',');
    if (!codes.every((c) => DAYS.includes(c))) return null;
    days = codes.map((c) => DAYS.indexOf(c));
  } else {
    days = rule.FREQ === 'DAILY' ? [0, 1, 2, 3, 4, 5, 6] : [weekday(start)];
  }
  const slot = start.hh * 2 + start.mm / 30;
  return days.map((d) => [d, slot, dur / SLOT_S]);
}

export function paintRuns(cells, runs) {
  for (const [day, slot, len] of runs) {
    for (let k = 0; k < len; k += 1) cells[(day * SLOTS + slot + k) % WEEK] = true;
  }
}

/** Painted cells back to weekly entries: one run per contiguous range (wrapping around the
 * week), runs with the same start time and length merged into one entry with several days. */
export function cellsToEntries(cells) {
  if (cells.every(Boolean)) {
    return [{ start: startText(0, 0), duration_s: 7 * 86400, rrule: 'FREQ=WEEKLY;BYDAY=MO' }];
  }
  const first = cells.findIndex((c) => !c);
  if (first < 0 || !cells.some(Boolean)) return [];
  const runs = [];
  let runStart = null;
  for (let step = 1; step <= WEEK; step += 1) {
    const i = (first + step) % WEEK;
    if (cells[i] && runStart === null) runStart = i;
    if (!cells[i] && runStart !== null) {
      runs.push([runStart, (i - runStart + WEEK) % WEEK]);
      runStart = null;
    }
  }
  const groups = new Map();
  for (const [startIdx, len] of runs) {
    const key = `${startIdx % SLOTS}/${len}`;
    if (!groups.has(key)) groups.set(key, { slot: startIdx % SLOTS, len, days: [] });
    groups.get(key).days.push(Math.floor(startIdx / SLOTS));
  }
  return [...groups.values()]
    .map((g) => ({ ...g, days: g.days.sort((a, b) => a - b) }))
    .sort((a, b) => a.days[0] - b.days[0] || a.slot - b.slot)
    .map((g) => ({
      start: startText(g.days[0], g.slot),
      duration_s: g.len * SLOT_S,
      rrule: `FREQ=WEEKLY;BYDAY=${g.days.map((d) => DAYS[d]).join(',')}`,
    }));
}

function startText(day, slot) {
  return `${REF.y}-${pad(REF.m)}-${pad(REF.d + day)}T${pad(Math.floor(slot / 2))}:${slot % 2 ? '30' : '00'}:00`;
}

export function slotTime(slot) {
  const s = ((slot % SLOTS) + SLOTS) % SLOTS;
  return `${pad(Math.floor(s / 2))}:${s % 2 ? '30' : '00'}`;
}

export function daysText(days) {
  const sorted = [...new Set(days)].sort((a, b) => a - b);
  if (sorted.length === 7) return 'Every day';
  const ranges = [];
  for (const d of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === d - 1) last[1] = d; else ranges.push([d, d]);
  }
  return ranges.map(([a, b]) => (a === b ? DAY_SHORT[a] : b === a + 1 ? `${DAY_SHORT[a]}, ${DAY_SHORT[b]}` : `${DAY_SHORT[a]}–${DAY_SHORT[b]}`)).join(', ');
}

export function durationText(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

export function describeEntry(entry, kind) {
  const runs = kind === 'interval' ? entryRuns(entry) : null;
  const start = parseStart(entry.start);
  const time = start ? `${pad(start.hh)}:${pad(start.mm)}` : entry.start;
  if (runs) {
    const [, slot, len] = runs[0];
    const end = len >= SLOTS ? ` for ${durationText(entry.duration_s)}` : `–${slotTime(slot + len)}`;
    return `${daysText(runs.map((r) => r[0]))} ${slotTime(slot)}${end}`;
  }
  const rule = parseRrule(entry.rrule);
  let when = entry.rrule ? entry.rrule : `once on ${entry.start.replace('T', ' ')}`;
  if (rule && Object.keys(rule).every((k) => ['FREQ', 'BYDAY'].includes(k))) {
    if (rule.FREQ === 'DAILY' && !rule.BYDAY) when = 'Every day';
    else if (rule.BYDAY && rule.BYDAY.split(',').every((c) => DAYS.includes(c))) when = daysText(rule.BYDAY.split(',').map((c) => DAYS.indexOf(c)));
    else if (rule.FREQ === 'WEEKLY' && start) when = `${DAY_SHORT[weekday(start)]} weekly`;
  }
  return kind === 'pulse' || !entry.duration_s ? `${when} at ${time}` : `${when} at ${time} for ${durationText(entry.duration_s)}`;
}
