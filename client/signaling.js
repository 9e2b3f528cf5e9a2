// WebSocket signaling with automatic reconnection (exponential backoff + jitter).
//
// Events (all CustomEvent, payload in `detail`):
//   'open'     {attempt}                      socket is open
//   'message'  {msg}                          one parsed JSON object from the server
//   'close'    {code, reason, wasOpen, retryIn} socket closed; a reconnect is scheduled in retryIn ms
//   'retry'    {}                             a reconnect attempt is starting now

export class Signaling extends EventTarget {
  /**
   * @param {string} url  ws:// or wss:// URL
   * @param {{minDelay?: number, maxDelay?: number}} [backoff]  reconnect delays in ms
   */
  constructor(url, { minDelay = 1000, maxDelay = 30000 } = {}) {
    super();
    this.url = url;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;          // consecutive failed attempts, drives the backoff
    this.retryAt = 0;          // Date.now() of the next scheduled attempt (0 = none)
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    this._closedForGood = false;
    this._minNextDelay = 0;    // a floor for the next delay (e.g. "server full": wait longer)

    // Come back quickly when the network returns.
    window.addEventListener('online', () => {
      if (!this.isOpen && !this._closedForGood) this.retryNow();
    });
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this._closedForGood) return;
    clearTimeout(this._timer);
    this._timer = undefined;
    this.retryAt = 0;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) {
      return;
    }
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error('WebSocket construction failed', err);
      this._scheduleReconnect(false, 0, String(err));
      return;
    }
    this.ws = ws;
    let wasOpen = false;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      wasOpen = true;
      this.dispatchEvent(new CustomEvent('open', { detail: { attempt: this.attempt } }));
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      if (typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('Ignoring a non-JSON message from the server');
        return;
      }
      if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
      this.dispatchEvent(new CustomEvent('message', { detail: { msg } }));
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this._closedForGood) return;
      this._scheduleReconnect(wasOpen, ev.code, ev.reason);
    });
    // 'error' is always followed by 'close'; nothing to do here.
  }

  /** The connection was healthy (e.g. the server greeted us): reset the backoff. */
  markHealthy() {
    this.attempt = 0;
  }

  /**
   * Make the next reconnect wait at least `ms` (used for "server full").
   * @param {number} ms
   */
  delayNextRetry(ms) {
    this._minNextDelay = Math.max(this._minNextDelay, ms);
  }

  /**
   * Send one message as JSON.
   * @param {object} obj
   * @returns {boolean} false if the socket is not open
   */
  send(obj) {
    if (!this.ws || !this.isOpen) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  /** Drop the current socket on purpose and reconnect after the usual backoff. */
  drop() {
    if (this.ws) {
      try { this.ws.close(4000, 'client reset'); } catch { /* ignore */ }
    }
  }

  retryNow() {
    if (this._closedForGood) return;
    this._minNextDelay = 0;
    this.dispatchEvent(new CustomEvent('retry', { detail: {} }));
    this.connect();
  }

  /** Close for good (page is going away). */
  close() {
    this._closedForGood = true;
    clearTimeout(this._timer);
    if (this.ws) {
      try { this.ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this.ws = null;
  }

  /**
   * @param {boolean} wasOpen
   * @param {number} code
   * @param {string} reason
   */
  _scheduleReconnect(wasOpen, code, reason) {
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const jitter = 0.8 + Math.random() * 0.4;
    const delay = Math.max(Math.round(base * jitter), this._minNextDelay);
    this._minNextDelay = 0;
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this.dispatchEvent(new CustomEvent('retry', { detail: {} }));
      this.connect();
    }, delay);
    this.dispatchEvent(new CustomEvent('close', { detail: { code, reason, wasOpen, retryIn: delay } }));
  }
}

/** ws:// or wss:// URL of the signaling endpoint, relative to the page. */
export function signalingUrl(path = './ws') {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  return url.href;
}
