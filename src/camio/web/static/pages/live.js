// Live I/O: every port with its state, circuit and the cause of its last change, updated from
// the event stream; manual control of outputs; the simulator's wiring and faults; virtual
// inputs and the manual trigger.

import { can, get, post, put, reportError, toast } from '../app.js';
import {
  badge, busy, button, card, empty, fill, fmtCause, fmtMs, fmtTime, h, icon, lamp, pageHeader, uid,
} from '../lib/ui.js';

export async function render(root, ctx) {
  const [portsRes, vinRes, manualRes, device] = await Promise.all([
    get('/api/v1/ports'),
    get('/api/v1/virtual-inputs'),
    get('/api/v1/triggers/manual'),
    get('/api/v1/device').catch(() => ({})),
  ]);
  const isSim = device.driver === 'sim';
  const operator = can('operator');

  const cards = new Map(); // port id -> {state, update, el}
  const inputGrid = h('div', { class: 'cards' });
  const outputGrid = h('div', { class: 'cards' });
  const summary = h('div', { class: 'summary', 'aria-live': 'polite' });

  function buildPorts(ports) {
    cards.clear();
    const ins = ports.filter((p) => p.direction === 'input');
    const outs = ports.filter((p) => p.direction === 'output');
    fill(inputGrid, ...(ins.length ? ins.map((p) => register(inputCard(p, isSim, operator))) : [empty('This device has no alarm inputs.')]));
    fill(outputGrid, ...(outs.length ? outs.map((p) => register(outputCard(p, operator))) : [empty('This device has no alarm outputs.')]));
    paintSummary();
  }
  function register(item) {
    cards.set(item.state.id, item);
    return item.el;
  }

  // Virtual inputs ----------------------------------------------------------------------------
  const vstate = new Map(vinRes.virtual_inputs.map((v) => [String(v.number), v]));
  const vbuttons = new Map();
  const vgrid = h('div', { class: 'vgrid', role: 'group', 'aria-label': 'Virtual inputs' },
    vinRes.virtual_inputs.map((v) => {
      const num = h('span', { class: 'num', text: String(v.number) });
      const st = h('span', { class: 'st' });
      const btn = h('button', {
        type: 'button', class: 'vbtn', disabled: !operator,
        'aria-label': `Virtual input ${v.number}`,
        title: operator ? `Turn virtual input ${v.number} on or off` : `Virtual input ${v.number}`,
      }, num, st);
      btn.addEventListener('click', () => busy(btn, async () => {
        const current = vstate.get(String(v.number));
        try {
          const res = await put(`/api/v1/virtual-inputs/${v.number}`, { active: !current.active });
          Object.assign(current, res);
          paintV(String(v.number));
        } catch (err) { reportError(err, `Virtual input ${v.number}`); }
      }));
      vbuttons.set(String(v.number), { btn, st });
      return btn;
    }));
  function paintV(n) {
    const item = vbuttons.get(n);
    const v = vstate.get(n);
    if (!item || !v) return;
    item.btn.setAttribute('aria-pressed', String(Boolean(v.active)));
    item.st.textContent = v.active ? 'on' : 'off';
    item.btn.title = `Virtual input ${n}: ${v.active ? 'on' : 'off'}${v.cause ? ` (${fmtCause(v.cause)})` : ''}`;
  }
  for (const n of vstate.keys()) paintV(n);

  // Manual trigger ----------------------------------------------------------------------------
  const manual = { active: manualRes.active, cause: manualRes.cause };
  const manualText = h('span', { 'aria-live': 'polite' });
  const manualCause = h('span', { class: 'muted' });
  const manualToggle = button('Turn on', { variant: 'secondary', disabled: !operator }, 'hand');
  const manualPulse = button('Pulse', { variant: 'secondary', disabled: !operator, title: 'On and off again at once: fires rules on the manual trigger' }, 'pulse');
  manualToggle.addEventListener('click', () => busy(manualToggle, async () => {
    try {
      const res = await put('/api/v1/triggers/manual', { active: !manual.active });
      manual.active = res.active;
      paintManual();
    } catch (err) { reportError(err, 'Manual trigger'); }
  }));
  manualPulse.addEventListener('click', () => busy(manualPulse, async () => {
    try {
      await put('/api/v1/triggers/manual', { pulse: true });
      toast('Manual trigger pulsed.', 'success');
    } catch (err) { reportError(err, 'Manual trigger'); }
  }));
  const manualLampHolder = h('span', { class: 'row' });
  function paintManualAll() {
    fill(manualLampHolder, lamp(manual.active ? 'alarm' : 'ok', manual.active ? 'on' : 'off'));
    fill(manualText, h('strong', { text: manual.active ? 'On' : 'Off' }));
    manualCause.textContent = manual.cause ? ` · ${fmtCause(manual.cause)}` : '';
    manualToggle.querySelector('span').textContent = manual.active ? 'Turn off' : 'Turn on';
    manualToggle.setAttribute('aria-pressed', String(Boolean(manual.active)));
  }
  paintManualAll();

  // Summary -----------------------------------------------------------------------------------
  function paintSummary() {
    const states = [...cards.values()].map((c) => c.state);
    const ins = states.filter((s) => s.direction === 'input');
    const outs = states.filter((s) => s.direction === 'output');
    const activeIn = ins.filter((s) => s.active).length;
    const tamper = ins.filter((s) => s.tamper).length;
    const activeOut = outs.filter((s) => s.active).length;
    const von = [...vstate.values()].filter((v) => v.active).length;
    fill(summary, 
      stat(activeIn ? 'alarm' : 'ok', `${activeIn} of ${ins.length}`, 'inputs active'),
      tamper ? stat('warn', String(tamper), 'in tamper') : null,
      stat(activeOut ? 'alarm' : 'ok', `${activeOut} of ${outs.length}`, 'outputs active'),
      stat(von ? 'alarm' : 'off', String(von), 'virtual inputs on'),
      isSim ? h('span', { class: 'stat' }, icon('info'), h('span', { text: 'Simulated wiring' })) : null,
    );
  }
  function stat(tone, value, label) {
    return h('span', { class: 'stat' }, lamp(tone, ''), h('strong', { text: value }), h('span', { class: 'muted', text: label }));
  }

  buildPorts(portsRes.ports);

  root.append(
    pageHeader('Live I/O', 'The terminal block as it is now. Everything on this page updates live.'),
    summary,
    h('section', { class: 'section', 'aria-labelledby': 'live-in' },
      h('div', { class: 'section-head' }, h('h2', { id: 'live-in', text: 'Alarm inputs' }),
        isSim && operator ? h('span', { class: 'muted', text: 'Simulator: close or open a circuit, or inject a fault.' }) : null),
      inputGrid),
    h('section', { class: 'section', 'aria-labelledby': 'live-out' },
      h('div', { class: 'section-head' }, h('h2', { id: 'live-out', text: 'Alarm outputs' }),
        operator ? h('span', { class: 'muted', text: 'Start (continuous), Stop, or Pulse for a time.' }) : null),
      outputGrid),
    h('div', { class: 'columns section' },
      card('Virtual inputs',
        h('p', { class: 'card-desc', text: 'Software switches 1–32 for rules and other programs.' }),
        vgrid),
      card('Manual trigger',
        h('p', { class: 'card-desc', text: 'A switch for rules with the “manual trigger” condition.' }),
        h('div', { class: 'manual-card' },
          manualLampHolder,
          h('div', { class: 'grow' }, manualText, manualCause),
          h('div', { class: 'btn-group' }, manualToggle, manualPulse)))),
  );

  // Live updates ------------------------------------------------------------------------------
  let reloadTimer = null;
  ctx.onCleanup(() => clearTimeout(reloadTimer));
  ctx.subscribe((ev) => {
    switch (ev.topic) {
      case 'io/input':
      case 'io/output': {
        const item = cards.get(ev.source);
        if (!item) return;
        item.apply(ev);
        paintSummary();
        break;
      }
      case 'io/virtual_input': {
        const v = vstate.get(String(ev.source));
        if (!v) return;
        v.active = Boolean(ev.data?.active);
        v.cause = ev.cause;
        paintV(String(ev.source));
        paintSummary();
        break;
      }
      case 'trigger/manual':
        manual.active = Boolean(ev.data?.active);
        manual.cause = ev.cause;
        paintManualAll();
        break;
      case 'config/changed':
        // Names, modes and the port list may have changed: fetch them again (once per burst).
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(async () => {
          try {
            const res = await get('/api/v1/ports');
            if (ctx.alive()) buildPorts(res.ports);
          } catch { /* the next change will try again */ }
        }, 300);
        break;
      default:
    }
  });
  ctx.every(250, () => { for (const item of cards.values()) item.tick?.(); });
}

// ---------------------------------------------------------------------------------------------
// Cards

function inputTone(s) {
  if (!s.enabled) return ['off', 'Disabled'];
  if (s.tamper) return ['warn', `Tamper (${s.circuit})`];
  if (s.active) return ['alarm', 'Active'];
  return ['ok', 'Normal'];
}

function inputCard(port, isSim, operator) {
  const s = {
    id: port.id, name: port.name, direction: 'input', active: port.active, circuit: port.circuit,
    tamper: port.tamper, armed: port.armed, enabled: port.enabled, normal: port.normal_state,
    supervised: port.supervised, debouncing: port.debouncing, cause: port.cause, time: null,
  };
  const titleId = uid('port');
  const lampHolder = h('span');
  const stateLine = h('div', { class: 'port-state', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const circuitDd = h('dd');
  const causeDd = h('dd');
  const circuitBtns = {};
  let controls = null;
  if (isSim && operator) {
    const circuitRow = h('div', { class: 'btn-group' },
      ['closed', 'open'].map((c) => {
        const btn = button(c === 'closed' ? 'Close circuit' : 'Open circuit', { size: 'sm' }, c);
        btn.addEventListener('click', () => busy(btn, () => simCall(port.id, 'circuit', { circuit: c })));
        circuitBtns[c] = btn;
        return btn;
      }));
    const faults = [
      ['bounce', 'Bounce', 'bounce', 'Contact bounce: 6 edges 3 ms apart, ending at the other level'],
      ['stuck', 'Stuck', 'lock', 'The wire stays at its current level whatever happens'],
      ['cut', 'Cut', 'cut', 'Cut the supervised loop (tamper)'],
      ['short', 'Short', 'short', 'Short the supervised loop (tamper)'],
      ['clear', 'Clear', 'clear', 'End every fault; a tampered loop returns to normal'],
    ];
    const faultRow = h('div', { class: 'btn-group' }, faults.map(([fault, label, ic, tip]) => {
      const needsSupervision = (fault === 'cut' || fault === 'short') && !port.supervised;
      const btn = button(label, {
        size: 'sm', variant: 'ghost',
        disabled: needsSupervision,
        title: needsSupervision ? 'Only for supervised inputs (end-of-line resistors); turn it on in Alarm in' : tip,
        'aria-label': `${label}: ${tip}`,
      }, ic);
      btn.addEventListener('click', () => busy(btn, () => simCall(port.id, 'fault', { fault })));
      return btn;
    }));
    controls = h('div', { class: 'port-controls' },
      h('span', { class: 'label', text: 'Simulator wiring' }), circuitRow,
      h('span', { class: 'label', text: 'Inject fault' }), faultRow);
  }
  const el = h('article', { class: 'card port', 'aria-labelledby': titleId },
    h('div', { class: 'port-head' }, lampHolder,
      h('div', { class: 'port-title' }, h('h3', { id: titleId, text: port.name }), h('span', { class: 'sub', text: port.id })),
      stateLine),
    h('dl', { class: 'port-meta' },
      h('dt', { text: 'Circuit' }), circuitDd,
      h('dt', { text: 'Trigger mode' }), h('dd', { text: port.normal_state === 'closed' ? 'Disconnect (NC): active when opened' : 'Connect (NO): active when closed' }),
      h('dt', { text: 'Last change' }), causeDd),
    controls);

  function update() {
    const [tone, label] = inputTone(s);
    el.dataset.tone = tone;
    fill(lampHolder, lamp(tone, label));
    fill(stateLine, 
      h('span', { class: 'sr-only', text: `${s.name}: ` }),
      badge(label, tone === 'off' ? 'muted' : tone),
      s.enabled && !s.armed ? badge('Disarmed', 'muted', { title: 'Outside its arming schedule: rules that require it armed ignore it' }) : null,
      s.debouncing ? badge('Debouncing', 'warn') : null);
    fill(circuitDd, h('span', { class: 'mono', text: s.circuit }), h('span', { class: 'muted', text: ` · normal ${s.normal}` }));
    fill(causeDd, h('span', { text: fmtCause(s.cause) }), s.time ? h('span', { class: 'muted', text: ` · ${fmtTime(s.time)}` }) : null);
    for (const [c, btn] of Object.entries(circuitBtns)) btn.setAttribute('aria-pressed', String(s.circuit === c));
  }
  update();
  return {
    state: s,
    el,
    apply(ev) {
      const before = s.active || s.tamper;
      Object.assign(s, {
        active: Boolean(ev.data?.active),
        circuit: ev.data?.circuit ?? s.circuit,
        tamper: Boolean(ev.data?.tamper),
        armed: ev.data?.armed ?? s.armed,
        debouncing: false,
        cause: ev.cause ?? s.cause,
      });
      if (ev.kind !== 'initialized') s.time = ev.time;
      update();
      if (ev.kind !== 'initialized' && before !== (s.active || s.tamper)) flash(el);
    },
  };
}

async function simCall(portId, what, body) {
  try {
    await post(`/api/v1/sim/ports/${encodeURIComponent(portId)}/${what}`, body);
  } catch (err) {
    reportError(err, portId);
  }
}

function outputTone(s) {
  if (!s.enabled) return ['off', 'Disabled'];
  if (s.pending) return ['warn', 'Pending'];
  if (s.active) return ['alarm', 'Active'];
  return ['ok', 'Idle'];
}

function outputCard(port, operator) {
  const cfg = port.config || {};
  const s = {
    id: port.id, name: port.name, direction: 'output', active: port.active, circuit: port.circuit,
    enabled: port.enabled, pending: port.pending, cause: port.cause, time: null,
    deadline: port.remaining_ms ? Date.now() + port.remaining_ms : null,
  };
  const titleId = uid('port');
  const lampHolder = h('span');
  const stateLine = h('div', { class: 'port-state', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const circuitDd = h('dd');
  const causeDd = h('dd');
  const remaining = h('span', { class: 'countdown' });
  const timerBadge = h('span', { class: 'badge badge-info', title: 'Time left of this activation' }, icon('clock'), remaining);
  let controls = null;
  const actionButtons = [];
  if (operator) {
    const start = button('Start', { size: 'sm', variant: 'secondary', title: 'Active until stopped' }, 'play');
    const stop = button('Stop', { size: 'sm', variant: 'secondary' }, 'stop');
    const pulseId = uid('pulse');
    const pulseInput = h('input', { id: pulseId, type: 'number', min: '1', max: '86400000', step: '1', value: '1000', inputmode: 'numeric' });
    const pulse = button('Pulse', { size: 'sm', variant: 'secondary', type: 'submit' }, 'pulse');
    const pulseForm = h('form', { class: 'pulse-form' },
      h('label', { for: pulseId, class: 'sr-only', text: `Pulse duration for ${port.name} in milliseconds` }),
      pulseInput, pulse);
    start.addEventListener('click', () => busy(start, () => drive(port.id, { active: true })));
    stop.addEventListener('click', () => busy(stop, () => drive(port.id, { active: false })));
    pulseForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const ms = Number(pulseInput.value);
      if (!Number.isInteger(ms) || ms < 1 || ms > 86_400_000) {
        toast('Pulse duration: a whole number of milliseconds, 1 to 86400000.', 'error');
        pulseInput.focus();
        return;
      }
      busy(pulse, () => drive(port.id, { active: true, duration_ms: ms }));
    });
    actionButtons.push(start, stop, pulse);
    controls = h('div', { class: 'port-controls' },
      h('span', { class: 'label', text: 'Manual control' }),
      h('div', { class: 'row' }, start, stop, pulseForm, h('span', { class: 'muted', 'aria-hidden': 'true', text: 'ms' })));
  }
  const modeText = cfg.mode === 'pulse' ? `Pulse ${cfg.pulse_on_ms}/${cfg.pulse_off_ms} ms` : 'Switch';
  const alarmText = cfg.follow_source ? 'follows source' : cfg.alarm_time_ms === 0 ? 'continuous' : fmtMs(cfg.alarm_time_ms);
  const el = h('article', { class: 'card port', 'aria-labelledby': titleId },
    h('div', { class: 'port-head' }, lampHolder,
      h('div', { class: 'port-title' }, h('h3', { id: titleId, text: port.name }), h('span', { class: 'sub', text: port.id })),
      stateLine),
    h('dl', { class: 'port-meta' },
      h('dt', { text: 'Circuit' }), circuitDd,
      h('dt', { text: 'Mode' }), h('dd', { text: `${modeText} · alarm time ${alarmText}` }),
      h('dt', { text: 'Contact' }), h('dd', { text: [cfg.contact === 'wet' ? 'Wet (voltage output)' : 'Dry (relay)', cfg.rating].filter(Boolean).join(' · ') }),
      h('dt', { text: 'Last change' }), causeDd),
    controls);

  function update() {
    const [tone, label] = outputTone(s);
    el.dataset.tone = tone;
    fill(lampHolder, lamp(tone, label));
    fill(stateLine, 
      h('span', { class: 'sr-only', text: `${s.name}: ` }),
      badge(label, tone === 'off' ? 'muted' : tone),
      s.active && s.deadline ? timerBadge : null);
    fill(circuitDd, h('span', { class: 'mono', text: s.circuit }), h('span', { class: 'muted', text: ` · valid signal ${port.active_state || cfg.active_state}` }));
    fill(causeDd, h('span', { text: fmtCause(s.cause) }), s.time ? h('span', { class: 'muted', text: ` · ${fmtTime(s.time)}` }) : null);
    for (const b of actionButtons) b.disabled = !s.enabled;
    tick();
  }
  function tick() {
    if (!s.deadline || !s.active) return;
    const left = Math.max(0, s.deadline - Date.now());
    remaining.textContent = left >= 10_000 ? `${Math.ceil(left / 1000)} s left` : `${(left / 1000).toFixed(1)} s left`;
  }
  update();
  return {
    state: s,
    el,
    tick,
    apply(ev) {
      const before = s.active;
      s.active = Boolean(ev.data?.active);
      s.circuit = ev.data?.circuit ?? s.circuit;
      s.pending = false;
      s.cause = ev.cause ?? s.cause;
      s.deadline = s.active && ev.data?.remaining_ms ? Date.now() + ev.data.remaining_ms : null;
      if (ev.kind !== 'initialized') s.time = ev.time;
      update();
      if (ev.kind !== 'initialized' && before !== s.active) flash(el);
    },
  };
}

async function drive(portId, body) {
  try {
    await put(`/api/v1/ports/${encodeURIComponent(portId)}/state`, body);
  } catch (err) {
    reportError(err, portId);
  }
}

function flash(el) {
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
}
