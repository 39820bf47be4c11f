// Media: the recordings and snapshots the rules made, newest first (snapshots as thumbnails,
// recordings playable in place, both downloadable, deletable by administrators), the storage
// volumes they live on (ok, full or failure, and their space) and the video source, with a
// live snapshot on demand. New media and state changes arrive over the event stream.

import { ApiError, can, del, get, navigate, post, reportError, toast } from '../app.js';
import {
  badge, busy, button, card, confirmDialog, empty, field, fill, h, icon, modal, pageHeader, table, td, timeEl,
} from '../lib/ui.js';

const PAGE_SIZE = 50;
const KIND_FILTERS = [
  { value: '', label: 'Recordings and snapshots' },
  { value: 'recording', label: 'Recordings' },
  { value: 'snapshot', label: 'Snapshots' },
];
const VOLUME_NAMES = { local: 'Local storage (SD card)', share: 'Network share' };
const VOLUME_TONE = { ok: 'ok', full: 'warn', failure: 'alarm' };
const SOURCE_TONE = { connected: 'ok', connecting: 'warn', lost: 'alarm', off: 'muted' };
const SOURCE_TEXT = { connected: 'connected', connecting: 'connecting…', lost: 'lost', off: 'off' };

/** "12.3 MB": sizes of files and volumes (1024-based, as df shows them). */
function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** The URL of a media file: its id is its path (every segment is URL-safe already). */
function mediaUrl(item, download = false) {
  const path = item.id.split('/').map(encodeURIComponent).join('/');
  return `/api/v1/media/${path}${download ? '?download=1' : ''}`;
}

/** A media item from a media/recorded or media/snapshot event (source: the item's id). */
function itemFromEvent(ev) {
  const [volume, kindDir] = ev.source.split('/');
  const name = ev.data?.name || ev.source.split('/').pop();
  const t = name.slice(0, 19);
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}.${t.slice(16, 19)}Z`;
  const kind = kindDir === 'recordings' ? 'recording' : 'snapshot';
  return {
    id: ev.source, volume, kind, name, size: ev.data?.size ?? 0, time: iso,
    content_type: kind === 'recording' ? 'video/mp4' : 'image/jpeg',
  };
}

export async function render(root, ctx) {
  const admin = can('admin');
  const kindFilter = KIND_FILTERS.some((k) => k.value === ctx.query.get('kind')) ? ctx.query.get('kind') : '';

  const checkBtn = admin ? button('Check storage now', { onclick: (e) => busy(e.currentTarget, checkStorage) }, 'shield') : null;
  root.append(pageHeader('Media',
    'Recordings and snapshots on the device’s storage, the volumes they are kept on, and the video source.',
    button('Refresh', { onclick: (e) => busy(e.currentTarget, () => refreshAll().catch((err) => reportError(err))) }, 'refresh'),
    checkBtn));

  // Video source ------------------------------------------------------------------------------
  const videoBox = h('div');
  const snapImg = h('img', { class: 'live-snapshot', alt: 'Live snapshot', hidden: true });
  const snapInfo = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const snapBtn = button('Live snapshot', { onclick: (e) => busy(e.currentTarget, liveSnapshot) }, 'target');
  let video = null;

  function paintVideo() {
    if (!video) {
      fill(videoBox, h('p', { class: 'muted', text: 'This device has no video service.' }));
      snapBtn.disabled = true;
      return;
    }
    const state = video.state;
    const stream = video.stream;
    const worker = video.worker;
    snapBtn.disabled = !video.enabled;
    fill(videoBox, h('dl', { class: 'props' },
      h('dt', { text: 'State' }),
      h('dd', {}, badge(SOURCE_TEXT[state] || state, SOURCE_TONE[state] || 'muted', { dataset: { state } })),
      h('dt', { text: 'Source' }), h('dd', {}, h('span', { class: 'mono', text: video.source }),
        video.enabled ? null : h('span', { class: 'muted small', text: video.source === 'none' ? '' : ' (video is turned off on this device)' })),
      video.error ? [h('dt', { text: 'Error' }), h('dd', { class: 'video-error', text: video.error })] : null,
      stream ? [h('dt', { text: 'Stream' }), h('dd', {
        text: [stream.codec, stream.width && `${stream.width}×${stream.height}`, stream.fps && `${Math.round(stream.fps * 10) / 10} fps`].filter(Boolean).join(' · '),
      })] : null,
      worker?.bitrate_bps ? [h('dt', { text: 'Bitrate' }), h('dd', { text: `${Math.round(worker.bitrate_bps / 1000)} kbit/s` })] : null,
      h('dt', { text: 'Pre-alarm buffer' }),
      h('dd', { text: worker?.ring_s !== undefined && worker?.ring_s !== null ? `${video.pre_buffer_s} s (holding ${worker.ring_s.toFixed(1)} s)` : `${video.pre_buffer_s} s` }),
      video.overlay ? [h('dt', { text: 'Overlay' }), h('dd', { text: video.overlay })] : null,
      video.recordings.length ? [h('dt', { text: 'Recording now' }), h('dd', { text: `${video.recordings.length}` })] : null));
  }

  async function loadVideo() {
    try {
      video = await get('/api/v1/video');
    } catch (err) {
      if (err.status !== 404) throw err;
      video = null;
    }
    if (ctx.alive()) paintVideo();
  }

  /** The live JPEG, shown as a data: URL (the page's CSP allows data: images, not blob:). */
  async function liveSnapshot() {
    let res;
    try {
      res = await fetch('/api/v1/video/snapshot', {
        credentials: 'same-origin', cache: 'no-store', headers: { 'X-Requested-With': 'XMLHttpRequest' },
      });
    } catch {
      reportError(new ApiError(0, { message: 'The device cannot be reached. Check the network connection.' }), 'Live snapshot');
      return;
    }
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      if (res.status === 401) { get('/api/v1/video').catch(() => {}); return; } // ends the session
      reportError(new ApiError(res.status, body, res.headers), 'Live snapshot');
      return;
    }
    const blob = await res.blob();
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
    if (!ctx.alive()) return;
    snapImg.src = url;
    snapImg.hidden = false;
    snapInfo.textContent = `Taken ${new Date().toLocaleTimeString()} · ${fmtBytes(blob.size)}`;
  }

  // Storage -----------------------------------------------------------------------------------
  const storageBox = h('div', { class: 'stack' });

  function paintStorage(volumes) {
    if (!volumes) {
      fill(storageBox, h('p', { class: 'muted', text: 'This device has no media storage.' }));
      return;
    }
    fill(storageBox, volumes.map((v) => {
      const usedPct = v.total_bytes ? Math.round(((v.total_bytes - v.free_bytes) / v.total_bytes) * 100) : 0;
      return h('div', { class: 'volume', dataset: { volume: v.volume, state: v.state } },
        h('div', { class: 'row' },
          h('strong', { text: VOLUME_NAMES[v.volume] || v.volume }),
          badge(v.state, VOLUME_TONE[v.state] || 'muted', { dataset: { state: v.state } })),
        v.error ? h('p', { class: 'volume-error small', role: v.state === 'ok' ? null : 'alert', text: v.error }) : null,
        h('dl', { class: 'props small' },
          h('dt', { text: 'Path' }), h('dd', { class: 'mono', text: v.path }),
          v.state !== 'failure' ? [
            h('dt', { text: 'Free' }), h('dd', { text: `${fmtBytes(v.free_bytes)} of ${fmtBytes(v.total_bytes)} (${usedPct}% used)` }),
            h('dt', { text: 'Media' }), h('dd', { text: `${v.files} file${v.files === 1 ? '' : 's'}, ${fmtBytes(v.used_bytes)}` }),
          ] : null,
          v.deleted_by_retention ? [h('dt', { text: 'Removed by retention' }), h('dd', { text: String(v.deleted_by_retention) })] : null),
        v.state !== 'failure' && v.total_bytes ? h('meter', { class: 'volume-meter', min: 0, max: 100, value: usedPct, 'aria-label': `${VOLUME_NAMES[v.volume] || v.volume}: ${usedPct}% used` }) : null);
    }));
  }

  async function loadStorage() {
    try {
      const res = await get('/api/v1/storage');
      if (ctx.alive()) paintStorage(res.volumes);
    } catch (err) {
      if (err.status !== 404) throw err;
      paintStorage(null);
    }
  }

  async function checkStorage() {
    try {
      const res = await post('/api/v1/storage/check');
      paintStorage(res.volumes);
      const bad = res.volumes.filter((v) => v.state !== 'ok');
      toast(bad.length ? `Storage checked: ${bad.map((v) => `${v.volume} ${v.state}`).join(', ')}.` : 'Storage checked: every volume is ok.', bad.length ? 'error' : 'success');
      await loadMedia();
    } catch (err) { reportError(err, 'Check storage'); }
  }

  // Media list --------------------------------------------------------------------------------
  const kind = field({
    label: 'Show', name: 'kind', type: 'select', value: kindFilter, options: KIND_FILTERS,
  });
  kind.control.addEventListener('change', () => {
    navigate(`#/media${kind.control.value ? `?kind=${kind.control.value}` : ''}`);
  });
  const count = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const listBox = h('div');
  const older = button('Load older', {}, 'download');
  const pager = h('div', { class: 'pager' }, older);
  let items = [];
  let next = null;

  function query(before) {
    const p = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (kindFilter) p.set('kind', kindFilter);
    if (before) p.set('before', before);
    return p;
  }

  function preview(item) {
    if (item.kind === 'snapshot') {
      const img = h('img', { class: 'media-thumb', src: mediaUrl(item), alt: `Snapshot of ${new Date(item.time).toLocaleString()}`, loading: 'lazy', decoding: 'async', width: 160, height: 90 });
      return h('button', { type: 'button', class: 'thumb-btn', title: 'Show full size', onclick: () => showSnapshot(item) }, img);
    }
    // preload="none": a page of recordings costs nothing until one is played.
    return h('video', { class: 'media-video', src: mediaUrl(item), controls: true, preload: 'none', width: 240, height: 135, 'aria-label': `Recording of ${new Date(item.time).toLocaleString()}` });
  }

  function row(item, fresh = false) {
    return h('tr', { class: fresh ? 'new-row' : '', dataset: { media: item.id, kind: item.kind } },
      td('Preview', preview(item)),
      td('Time', h('span', { class: 'nowrap' }, timeEl(item.time))),
      td('Kind', badge(item.kind, item.kind === 'recording' ? 'info' : 'muted')),
      td('Name', h('span', { class: 'mono small media-name', text: item.name })),
      td('Volume', item.volume),
      td('Size', h('span', { class: 'nowrap', text: fmtBytes(item.size) }), 'num'),
      td('', h('div', { class: 'btn-group' },
        h('a', { class: 'btn btn-secondary btn-sm', href: mediaUrl(item, true), download: item.name, 'aria-label': `Download ${item.name}` }, icon('download'), h('span', { text: 'Download' })),
        admin ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', 'aria-label': `Delete ${item.name}`, title: 'Delete', onclick: () => remove(item) }, icon('trash')) : null), 'actions'));
  }

  function paintList() {
    paintCount();
    if (!items.length) {
      fill(listBox, empty(kindFilter ? `No ${kindFilter}s yet.` : 'No recordings or snapshots yet. Rules with a record or snapshot action make them.'));
      return;
    }
    fill(listBox, table({
      caption: 'Recordings and snapshots, newest first',
      className: 'media-table',
      columns: [{ label: 'Preview' }, { label: 'Time' }, { label: 'Kind' }, { label: 'Name' }, { label: 'Volume' }, { label: 'Size', class: 'num' }, { label: '', class: 'actions' }],
      rows: items.map((item) => row(item)),
    }));
  }

  async function loadMedia() {
    const res = await get(`/api/v1/media?${query()}`);
    if (!ctx.alive()) return;
    items = res.items;
    next = res.next;
    paintList();
  }

  async function loadOlder() {
    if (!next) return;
    const res = await get(`/api/v1/media?${query(next)}`);
    if (!ctx.alive()) return;
    const known = new Set(items.map((i) => i.id));
    const fresh = res.items.filter((i) => !known.has(i.id));
    items = items.concat(fresh);
    next = res.next;
    const tbody = listBox.querySelector('tbody');
    if (tbody) { tbody.append(...fresh.map((item) => row(item))); paintCount(); } else paintList();
  }
  function paintCount() {
    count.textContent = items.length ? `${items.length} shown${next ? '' : ' (all)'}` : '';
    older.hidden = !next;
  }
  older.addEventListener('click', () => busy(older, () => loadOlder().catch((err) => reportError(err, 'Load older'))));

  function showSnapshot(item) {
    modal({
      title: `Snapshot ${new Date(item.time).toLocaleString()}`,
      wide: true,
      content: h('div', { class: 'stack' },
        h('img', { class: 'media-full', src: mediaUrl(item), alt: `Snapshot of ${new Date(item.time).toLocaleString()}` }),
        h('p', { class: 'muted small mono', text: item.id })),
      actions: [
        h('a', { class: 'btn btn-secondary', href: mediaUrl(item, true), download: item.name }, icon('download'), h('span', { text: 'Download' })),
        button('Close', { dataset: { close: 'ok' } }),
      ],
    });
  }

  async function remove(item) {
    const what = item.kind === 'recording' ? 'recording' : 'snapshot';
    const ok = await confirmDialog({ title: `Delete ${what}`, message: `Delete the ${what} of ${new Date(item.time).toLocaleString()} (${item.name})? This cannot be undone.`, confirmLabel: `Delete ${what}`, danger: true });
    if (!ok) return;
    try {
      await del(mediaUrl(item));
      toast(`The ${what} was deleted.`, 'success');
    } catch (err) {
      if (err.status !== 404) { reportError(err, 'Delete'); return; }
      // Gone already (retention, another administrator): the list catches up below.
    }
    items = items.filter((i) => i.id !== item.id);
    listBox.querySelector(`tr[data-media="${CSS.escape(item.id)}"]`)?.remove();
    if (!items.length) paintList(); else paintCount();
    loadStorage().catch(() => {});
  }

  async function refreshAll() {
    await Promise.all([loadVideo(), loadStorage(), loadMedia()]);
  }

  root.append(
    h('div', { class: 'columns' },
      card('Video source', videoBox, h('div', { class: 'section-sm stack' },
        h('div', { class: 'row' }, snapBtn, snapInfo), snapImg)),
      card('Storage', storageBox)),
    h('section', { class: 'section' },
      h('div', { class: 'section-head' }, h('h2', { text: 'Recordings and snapshots' }),
        h('div', { class: 'row media-filter' }, kind, count)),
      listBox, pager));

  await refreshAll();

  // Live: new media at the top, the volumes' and the source's states as they change.
  ctx.subscribe((ev) => {
    if (ev.kind === 'initialized') return;
    if (ev.topic === 'media/recorded' || ev.topic === 'media/snapshot') {
      const item = itemFromEvent(ev);
      if ((kindFilter && item.kind !== kindFilter) || items.some((i) => i.id === item.id)) return;
      items.unshift(item);
      const tbody = listBox.querySelector('tbody');
      if (tbody) { tbody.prepend(row(item, true)); paintCount(); } else paintList();
      loadStorage().catch(() => {});
    } else if (ev.topic === 'storage/full' || ev.topic === 'storage/failure') {
      loadStorage().catch(() => {});
    } else if (ev.topic === 'video/source') {
      loadVideo().catch(() => {});
    }
  });
}
