// One WebSocket to /api/v1/events/stream for the whole app, shared by every page.
//
// The device first sends the current state of every stateful source (kind "initialized"), then
// live events. When the connection drops, the hub reconnects with exponential backoff (1 s to
// 30 s, with jitter); on reconnect the initialized events bring every page back to the truth.

const MAX_DELAY_MS = 30_000;

export class LiveHub {
  constructor(path) {
    this.path = path;
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.ws = null;
    this.wanted = false;
    this.attempt = 0;
    this.timer = null;
    this.status = 'off';
    this.retryAt = null;
    this.lastId = 0;
    /** Called when a connection closes without ever opening (the session may have ended). */
    this.onRefused = null;
  }

  /** Receive every event; returns the function that stops it. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Receive status changes ('off', 'connecting', 'live', 'reconnecting'). */
  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status, this.retryAt);
    return () => this.statusListeners.delete(fn);
  }

  start() {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000);
    }
    this.setStatus('off');
  }

  /** Reconnect now (e.g. after the network came back), skipping the remaining wait. */
  retryNow() {
    if (!this.wanted || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  setStatus(status, retryAt = null) {
    this.status = status;
    this.retryAt = retryAt;
    for (const fn of this.statusListeners) {
      try { fn(status, retryAt); } catch (err) { console.error(err); }
    }
  }

  connect() {
    this.timer = null;
    this.setStatus(this.attempt ? 'reconnecting' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}${this.path}`);
    } catch (err) {
      console.error(err);
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setStatus('live');
    };
    ws.onmessage = (msg) => {
      let event;
      try { event = JSON.parse(msg.data); } catch { return; }
      if (event.kind !== 'initialized' && event.id > this.lastId) this.lastId = event.id;
      for (const fn of this.listeners) {
        try { fn(event); } catch (err) { console.error(err); }
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.wanted) return;
      this.scheduleReconnect(opened);
    };
  }

  scheduleReconnect(wasOpen) {
    this.attempt += 1;
    const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.setStatus('reconnecting', Date.now() + delay);
    this.timer = setTimeout(() => this.connect(), delay);
    if (!wasOpen && this.onRefused) this.onRefused();
  }
}

/** Does an event match a topic filter as the API reads it ("io/*" = prefix, else exact)? */
export function topicMatches(filter, topic) {
  if (!filter) return true;
  if (filter.endsWith('*')) return topic.startsWith(filter.slice(0, -1));
  return topic === filter;
}
