// Rules, conditions and actions in words, for lists and summaries.

import { fmtMs } from './ui.js';

/** names: {ports: Map id->name, schedules: Map id->name, recipients: Map id->{name, kind}} */
export function describeCondition(c, names) {
  const port = (id) => names.ports.get(id) || id;
  let text;
  switch (c.kind) {
    case 'input':
      text = `${port(c.port)} is ${c.state === 'tamper' ? 'in tamper' : 'active'}${c.require_armed === false ? '' : ' (armed)'}`;
      break;
    case 'virtual_input':
      text = `virtual input ${c.number} is on`;
      break;
    case 'manual_trigger':
      text = 'the manual trigger is on';
      break;
    case 'schedule':
      text = `schedule ${names.schedules.get(c.schedule) || c.schedule}`;
      break;
    case 'recurrence':
      text = `every ${fmtMs(c.interval_s * 1000)}`;
      break;
    case 'output':
      text = `${port(c.port)} is active`;
      break;
    case 'device_started':
      text = 'the device starts';
      break;
    case 'storage':
      text = `storage ${c.volume ?? 'local'} ${c.state === 'full' ? 'is full' : 'has failed'}`;
      break;
    case 'video_source_lost':
      text = 'video source lost';
      break;
    case 'mqtt': {
      const what = c.payload == null ? 'a message' : `${c.match === 'regex' ? 'a message matching' : 'the message'} "${c.payload}"`;
      text = c.mode === 'stateful' ? `the last MQTT message on ${c.topic} is ${c.payload == null ? 'any' : `"${c.payload}"`}` : `${what} arrives on MQTT ${c.topic}`;
      break;
    }
    default:
      text = c.kind;
  }
  return c.invert ? `NOT (${text})` : text;
}

export function describeAction(a, names, mode = 'once') {
  if (!a) return '';
  const port = (id) => names.ports.get(id) || id;
  switch (a.kind) {
    case 'set_output': {
      if (a.active === false) return `stop ${port(a.port)}`;
      if (mode === 'while_active') return `hold ${port(a.port)} active`;
      const d = a.duration_ms === null || a.duration_ms === undefined
        ? 'for its alarm time'
        : a.duration_ms === 0 ? 'until stopped' : `for ${fmtMs(a.duration_ms)}`;
      return `${port(a.port)} active ${d}`;
    }
    case 'set_virtual_input': {
      const state = a.active === false ? 'off' : 'on';
      if (mode === 'while_active') return `hold virtual input ${a.number} ${state}`;
      const d = a.duration_ms ? ` for ${fmtMs(a.duration_ms)}` : '';
      return `virtual input ${a.number} ${state}${d}`;
    }
    case 'notify':
      return `notify ${recipientNames(a.recipients, names) || 'nobody'}`;
    case 'play_audio': {
      if (mode === 'while_active') return `play ${a.clip} until it stops holding`;
      const times = a.repeat && a.repeat > 1 ? ` ${a.repeat} times` : '';
      return `play ${a.clip}${times}`;
    }
    case 'snapshot': {
      const count = a.count ?? 1;
      const what = count > 1
        ? `take ${count} snapshots, ${fmtMs(a.interval_ms ?? 1000)} apart`
        : 'take a snapshot';
      return [what, keptOn(a.storage), sendTo(a.recipients, names)].filter(Boolean).join(', ');
    }
    case 'record': {
      const pre = seconds(a.pre_s ?? 5);
      const post = seconds(a.post_s ?? 10);
      const what = mode === 'while_active'
        ? `record from ${pre} before until ${post} after the conditions end`
        : `record ${pre} before to ${post} after`;
      return [what, keptOn(a.storage), sendTo(a.recipients, names)].filter(Boolean).join(', ');
    }
    case 'overlay_text': {
      if (!a.text) return 'clear the overlay text';
      const shown = `show overlay '${a.text}'`;
      if (mode === 'while_active') return shown;
      return a.duration_s ? `${shown} for ${seconds(a.duration_s)}` : shown;
    }
    default:
      return a.kind;
  }
}

function seconds(s) {
  return s === 0 ? '0 s' : fmtMs(s * 1000);
}

/** Where a snapshot or recording is kept, when it is not the default (local storage). */
function keptOn(storage) {
  return storage === 'share' ? 'kept on the share' : ''; // 'none': only sent
}

function recipientNames(ids, names) {
  return (ids || []).map((id) => names.recipients?.get(id)?.name || id).join(', ');
}

/** "e-mail to Guard" when every recipient is an e-mail one, else "send to Archive, Guard". */
function sendTo(ids, names) {
  if (!ids?.length) return '';
  const mail = ids.every((id) => names.recipients?.get(id)?.kind === 'email');
  return `${mail ? 'e-mail' : 'send'} to ${recipientNames(ids, names)}`;
}

export function ruleSummary(rule, names) {
  const conds = rule.conditions.map((c) => describeCondition(c, names));
  const when = rule.trigger_first && conds.length
    ? `When ${conds[0]} becomes true${conds.length > 1 ? ` while ${conds.slice(1).join(' and ')}` : ''}`
    : `${rule.action_mode === 'while_active' ? 'While' : 'When'} ${conds.join(' and ')}`;
  return `${when} → ${describeAction(rule.action, names, rule.action_mode)}`;
}

/** recipients (optional): as GET /api/v1/recipients lists them, for their names and kinds. */
export function namesFrom(ports = [], schedules = [], recipients = []) {
  return {
    ports: new Map(ports.map((p) => [p.id, p.name])),
    schedules: new Map(schedules.map((s) => [s.id, s.name])),
    recipients: new Map(recipients.map((r) => [r.id, { name: r.name || r.id, kind: r.kind }])),
  };
}

/** Rules that use a port in a condition or act on it. */
export function rulesUsing(rules, portId) {
  return rules.filter((r) => r.conditions.some((c) => c.port === portId)
    || r.action?.port === portId || r.fallback?.port === portId);
}
