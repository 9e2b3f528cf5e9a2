// A client for the random 1:1 video chat protocol (docs/protocol.md), with no DOM access.
//
// It owns the WebSocket (reconnection with backoff, see signaling.js), the one RTCPeerConnection per
// socket (see peer.js) and the user's intent: whether they want to be matched (Start / Next / Stop),
// `stop`s still in flight, the last fatal error. The page, or any other UI, calls `start()`, `next()`,
// `stop()`, `sendChat()`, `setLocalTracks()`, `setPreferences()`, `acceptRules()`, `report()` and listens
// to the events below.
//
// One WebSocket and ONE peer connection per visit: the connection is negotiated once (non-trickle
// offer → answer); Start / Next / Stop are plain signaling messages and the server switches whose
// media it forwards on the connection we already have. Only when the WebSocket drops (server state
// lost) is a new peer connection created after reconnecting.
//
// Events (CustomEvent, payload in `detail`):
//   'statechange'      {state, previous, reason}  what to show changed: state is idle | waiting | paired;
//                      reason is start | next | stop (the user), welcome | waiting | paired |
//                      partner_left | idle (the server) or disconnected (the socket dropped).
//                      Fired on every transition the user would notice, also waiting → waiting
//                      (e.g. after partner_left while waiting) and idle → idle (on disconnect).
//   'welcome'          {id, version, reconnect}   the server greeted us (reconnect: not the first time)
//   'rules' | 'reported' | 'banned' | 'moderation'  the service's rules and safety (see safety.js);
//                      'moderation' {action, reason}: warned, video_hidden/shown, partner_hidden/shown, camera_required
//   'waiting' | 'paired' {partner, common} | 'partner_left' | 'idle'
//                      (common: the interests both share, as the server normalised them)
//                      the server's message, once applied (stale ones, e.g. after Stop, are dropped)
//   'chat'             {text}                     a chat message from the partner (plain text)
//   'online'           {count}                    people connected (null while disconnected)
//   'error'            {code, message, fatal}     the server refused something; fatal: it closes the socket
//   'negotiationerror' {stage, error}             stage 'offer': this browser could not make an offer;
//                                                 'answer': it rejected the server's answer
//   'remotestream'     {stream}                   the partner's media (null once the connection is gone)
//   'connectionstate'  {state}                    the peer connection's connectionState
//   'disconnected'     {retryAt}                  the socket closed; a reconnect is scheduled (Date.now() ms)
//   'reconnecting'     {}                         a reconnect attempt starts now

import { Signaling } from './signaling.js';
import { PeerLink } from './peer.js';
import { Safety } from './safety.js';
import { PREFERENCE_CODES, copyPreferences, intentMessage, samePreferences } from './intent.js';

export { PREFERENCE_CODES };
/** @typedef {'idle' | 'waiting' | 'paired'} State */
/** @typedef {import('./intent.js').Preferences} Preferences */

/** Error codes after which the server closes the connection (docs/protocol.md). */
export const FATAL_CODES = Object.freeze(['server_full', 'shutting_down', 'bad_sdp', 'internal_error', 'banned']);

/** After `server_full` without `retry_after`, wait at least this long before reconnecting. */
const SERVER_FULL_RETRY_MS = 30000;
/** Spread reconnections after `server_full`: up to this share of the delay is added at random. */
const RETRY_JITTER = 0.5;
/** Key repeat / double clicks: one Next per this many ms is plenty (and keeps us under rate limits). */
const NEXT_MIN_INTERVAL_MS = 300;
/** After `rate_limited`, restate the user's intent once things have calmed down. */
const RESYNC_DELAY_MS = 1500;

export class ProtocolClient extends EventTarget {
  /**
   * @param {string} url  ws:// or wss:// URL of the signaling endpoint
   * @param {object} [opts]
   * @param {MediaStream} [opts.localStream]  the stream local tracks are sent as part of (msid)
   * @param {{minDelay?: number, maxDelay?: number}} [opts.backoff]  reconnect delays in ms
   */
  constructor(url, { localStream, backoff } = {}) {
    super();
    /** @type {State} */
    this.state = 'idle';
    /** The user wants to be matched (Start/Next pressed, Stop not). */
    this.want = false;
    /** @type {string | null} our opaque id (from `welcome`) */
    this.id = null;
    /** @type {string | null} the current partner's opaque id */
    this.partner = null;
    /** @type {string[]} the interests we share with the current partner */
    this.common = [];
    /** @type {Preferences | null} null: none stated (the server keeps its defaults) */
    this.preferences = null;
    /** @type {number | null} */
    this.online = null;
    /** @type {string | null} */
    this.version = null;
    this.everWelcomed = false;
    /** `stop` messages whose `idle` reply has not arrived yet. */
    this.stopsInFlight = 0;
    /** @type {{code: string, message: string} | null} the last error that makes the server close the socket */
    this.fatalError = null;
    /** The rules, reports and a ban (safety.js). */
    this.safety = new Safety((msg) => this._socket.send(msg));

    /** The current socket's peer connection (replaced only after a reconnect) and the tracks to send. */
    this._link = new PeerLink(localStream || new MediaStream());
    for (const type of ['remotestream', 'negotiationerror']) {
      this._link.addEventListener(type, (e) => this._emit(type, /** @type {CustomEvent} */ (e).detail));
    }
    this._link.addEventListener('connectionstate', (e) => {
      const { state } = /** @type {CustomEvent} */ (e).detail;
      this._emit('connectionstate', { state });
      // The server's state for this connection is useless now: start over with a fresh socket.
      if (state === 'failed') this._socket.drop();
    });
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._resyncTimer = undefined;
    this._lastNextAt = -Infinity;

    this._socket = new Signaling(url, backoff);
    this._socket.addEventListener('message', (e) => this._handle(/** @type {CustomEvent} */ (e).detail.msg));
    this._socket.addEventListener('close', () => this._onSocketClosed());
    this._socket.addEventListener('retry', () => this._emit('reconnecting', {}));
  }

  // --- read-only views -------------------------------------------------------------------------

  /** @returns {RTCPeerConnection | null} */
  get pc() { return this._link.pc; }

  /** @returns {WebSocket | null} */
  get ws() { return this._socket.ws; }

  get isOpen() { return this._socket.isOpen; }

  /** The offer/answer exchange is done on the current socket. */
  get negotiated() { return this._link.negotiated; }

  /** Peer connections created during this visit (1 unless the socket dropped). */
  get pcCount() { return this._link.count; }

  /** The rules to accept before Start (null: none asked), whether they were accepted, the ban if any. */
  get rules() { return this.safety.rules; }
  get rulesAccepted() { return this.safety.accepted; }
  get banned() { return this.safety.banned; }

  /** Date.now() of the next reconnect attempt (0 = none scheduled). */
  get retryAt() { return this._socket.retryAt; }

  // --- connection ------------------------------------------------------------------------------

  connect() { this._socket.connect(); }

  /** Reconnect at once instead of waiting for the backoff. */
  retryNow() { this._socket.retryNow(); }

  /** Close for good (the page is going away). */
  close() { this._socket.close(); }

  // --- the user's intent -----------------------------------------------------------------------

  /** Look for a partner. Queued until negotiated if the server has not taken us yet. */
  start() {
    if (this.state !== 'idle') return false;
    this.want = true;
    this._setState('waiting', 'start');
    this._sendIntent('start');
    return true;
  }

  /**
   * Leave the current partner (if any) and look for another.
   * @param {number} [now]  performance.now()
   * @returns {boolean} false if ignored (idle, or pressed again within 300 ms)
   */
  next(now = performance.now()) {
    if (this.state === 'idle') return false;
    if (now - this._lastNextAt < NEXT_MIN_INTERVAL_MS) return false;
    this._lastNextAt = now;
    this.want = true;
    this.partner = null;
    this.common = [];
    this._setState('waiting', 'next');
    this._sendIntent('next');
    return true;
  }

  /**
   * What to ask of the next partners. While waiting, the search starts again with them at once;
   * while paired they apply from the next `next`.
   * @param {Preferences | null} preferences
   */
  setPreferences(preferences) {
    const next = copyPreferences(preferences);
    if (samePreferences(next, this.preferences)) return;
    this.preferences = next;
    if (this.want && this.state === 'waiting') this._sendIntent('start');
  }

  /** Leave the partner or the queue. */
  stop() {
    if (this.state === 'idle' && !this.want) return false;
    this.want = false;
    this.partner = null;
    this.common = [];
    this._setState('idle', 'stop');
    if (this._socket.send({ type: 'stop' })) this.stopsInFlight += 1;
    return true;
  }

  /**
   * Send a chat message to the current partner.
   * @param {string} text
   * @returns {boolean} false if the socket is not open
   */
  sendChat(text) {
    return this._socket.send({ type: 'chat', text });
  }

  /** Accept the rules (default: the current ones); a Start pressed before goes out now. @param {string} [version] */
  acceptRules(version = this.rules ? this.rules.version : undefined) {
    if (!version) return false;
    if (this.safety.accept(version)) this._flushIntent();
    return true;
  }

  /** Report the partner (or the last one, shortly after they left). @param {string} reason @param {string} [note] */
  report(reason, note) { return this.safety.report(reason, note); }

  /**
   * What to send; applied at once with replaceTrack (no renegotiation) and to later connections.
   * @param {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null}} tracks
   */
  setLocalTracks({ audio, video }) { return this._link.setTracks({ audio, video }); }

  // --- internals -------------------------------------------------------------------------------

  /**
   * @param {State} state
   * @param {string} reason
   */
  _setState(state, reason) {
    const previous = this.state;
    this.state = state;
    this._emit('statechange', { state, previous, reason });
  }

  /** @param {'start' | 'next'} type */
  _sendIntent(type) {
    // Before the offer/answer exchange (or the rules' acceptance), `_flushIntent` sends `start` later.
    if (this.negotiated && this.rulesAccepted) this._socket.send(intentMessage(type, this.preferences));
  }

  _flushIntent() {
    if (this.want && this.negotiated && this.rulesAccepted) this._socket.send(intentMessage('start', this.preferences));
  }

  // If the server refused a start/next/stop (rate limit), what we show may not be what the server
  // has: once things calm down, restate the user's intent. `next` is safe in every state (idle: acts
  // as start; waiting: no-op; paired: the user asked to move on anyway) and `stop` always is.
  _scheduleResync() {
    clearTimeout(this._resyncTimer);
    this._resyncTimer = setTimeout(() => {
      if (!this.negotiated || !this.rulesAccepted) return;
      if (this.want) {
        if (this.state !== 'paired') this._socket.send(intentMessage('next', this.preferences));
      } else if (this._socket.send({ type: 'stop' })) {
        this.stopsInFlight += 1;
      }
    }, RESYNC_DELAY_MS);
  }

  /** A new peer connection for this socket: send its offer. @param {unknown} iceServers */
  async _startSession(iceServers) {
    const sdp = await this._link.open(iceServers);
    if (sdp !== null) this._socket.send({ type: 'offer', sdp });
  }

  /** @param {unknown} sdp */
  async _applyAnswer(sdp) {
    if (await this._link.answer(sdp)) this._flushIntent();
  }

  _onSocketClosed() {
    this._dropSession();
    this._setState(this.want ? 'waiting' : 'idle', 'disconnected');
    this._emit('disconnected', { retryAt: this._socket.retryAt });
  }

  /** @param {Record<string, any>} msg  one JSON object from the server */
  _handle(msg) {
    switch (msg.type) {
      case 'welcome': {
        if (this._link.session) return; // already set up on this socket
        this.id = typeof msg.id === 'string' ? msg.id : null;
        this.version = msg.version || null;
        const reconnect = this.everWelcomed;
        this.everWelcomed = true;
        this.fatalError = null;
        this.stopsInFlight = 0;
        this._socket.markHealthy();
        this._emit('welcome', { id: this.id, version: this.version, reconnect });
        this._readSafety(msg);
        if (this.want) this._setState('waiting', 'welcome');
        this._startSession(msg.iceServers);
        break;
      }
      case 'answer':
        this._applyAnswer(msg.sdp);
        break;
      case 'waiting':
        if (!this.want) return; // stale: a `stop` is on its way
        this.partner = null;
        this.common = [];
        if (this.state !== 'waiting') this._setState('waiting', 'waiting');
        this._emit('waiting', {});
        break;
      case 'paired':
        if (!this.want) return;
        this.partner = typeof msg.partner === 'string' ? msg.partner : '';
        this.common = Array.isArray(msg.common) ? msg.common.filter((x) => typeof x === 'string') : [];
        this._setState('paired', 'paired');
        this._emit('paired', { partner: this.partner, common: [...this.common] });
        break;
      case 'partner_left':
        this.partner = null;
        this.common = [];
        if (this.want) this._setState('waiting', 'partner_left');
        this._emit('partner_left', {});
        break;
      case 'idle':
        if (this.stopsInFlight > 0) {
          this.stopsInFlight -= 1;
          if (this.want) return; // the user pressed Start again after Stop
        } else {
          this.want = false;
        }
        this.partner = null;
        this.common = [];
        if (this.state !== 'idle') this._setState('idle', 'idle');
        this._emit('idle', {});
        break;
      case 'chat':
        if (typeof msg.text === 'string' && this.state === 'paired') this._emit('chat', { text: msg.text });
        break;
      case 'online':
        if (typeof msg.count === 'number' && Number.isFinite(msg.count)) {
          this.online = msg.count;
          this._emit('online', { count: msg.count });
        }
        break;
      case 'error':
        this._readSafety(msg); // banned, rules_changed
        this._handleError(String(msg.code || ''), String(msg.message || ''), msg.retry_after);
        break;
      default:
        if (!this._readSafety(msg)) console.debug('Ignoring unknown message', msg.type); // reported, moderation
    }
  }

  /** The socket is gone: so are its peer connection and what we knew through it. */
  _dropSession() {
    this._link.close();
    this.stopsInFlight = 0;
    this.partner = null;
    this.common = [];
    this.online = null;
    this._emit('online', { count: null });
  }

  /** Emit what `msg` means for the rules, reports or a ban; false if nothing. @param {Record<string, any>} msg */
  _readSafety(msg) {
    const event = this.safety.read(msg);
    if (!event) return false;
    if (event[0] === 'banned') { // stop here: reconnecting would only be refused again
      this.want = false;
      this._socket.close();
      this._dropSession();
      if (this.state !== 'idle') this._setState('idle', 'banned');
    }
    this._emit(...event);
    return true;
  }

  /**
   * @param {string} code
   * @param {string} message
   * @param {unknown} [retryAfter]  seconds, when the server says when to try again
   */
  _handleError(code, message, retryAfter) {
    console.warn(`Server error ${code}: ${message}`);
    const fatal = FATAL_CODES.includes(code);
    if (fatal) {
      this.fatalError = { code, message };
      if (code === 'server_full') {
        const base = typeof retryAfter === 'number' && retryAfter > 0 ? retryAfter * 1000 : SERVER_FULL_RETRY_MS;
        this._socket.delayNextRetry(Math.round(base * (1 + RETRY_JITTER * Math.random())));
      }
    } else if (code === 'rate_limited') {
      this._scheduleResync();
    } else if (PREFERENCE_CODES.includes(code)) {
      // The server ignored our start/next: stop, so that both sides agree we are not looking.
      this.stop();
    }
    this._emit('error', { code, message, fatal });
  }

  /**
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
