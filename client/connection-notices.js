// What the user is told about the server and the connection: refused requests, a lost or full
// server with a live "Retrying in N s…" countdown, an unstable or failed media connection.

import { formatSeconds } from './dom.js';

/** @typedef {import('./notices.js').Notices} Notices */
/** @typedef {import('./protocol.js').ProtocolClient} ProtocolClient */

/** @type {Record<string, string>} */
export const FRIENDLY_ERRORS = {
  server_full: 'The server is full, try again in a minute.',
  shutting_down: 'The server is restarting.',
  bad_sdp: "Your browser and the server couldn't agree on how to send video.",
  internal_error: 'Something went wrong on the server.',
  rate_limited: "Whoa, that's fast! Slow down for a moment.",
  chat_too_long: 'That message is too long (1000 characters max).',
  chat_empty: "Empty messages aren't sent.",
  not_paired: "Your message wasn't delivered: you're not connected to anyone right now.",
};

/** Errors about a chat message: told in the chat log, not in a banner. */
export const CHAT_ERRORS = Object.freeze(['chat_too_long', 'chat_empty', 'not_paired']);

const CONNECTION_KINDS = ['unreachable', 'disconnected', 'server-error'];
/** A media connection `disconnected` for this long is shown as unstable. */
const UNSTABLE_AFTER_MS = 2500;
const COUNTDOWN_TICK_MS = 500;

export class ConnectionNotices {
  /**
   * @param {Notices} notices
   * @param {ProtocolClient} client  read for the retry time, the last fatal error, whether we were ever online
   */
  constructor(notices, client) {
    this.notices = notices;
    this.client = client;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this._countdown = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._unstableTimer = undefined;
    this._mediaState = 'new';
  }

  /** The server greeted us: whatever went wrong before is over. */
  welcome(reconnect = false) {
    this._stopCountdown();
    for (const k of ['unreachable', 'disconnected', 'server-error', 'media-failed']) this.notices.clear(k);
    if (reconnect) this.notices.show('reconnected', "You're back online.", { tone: 'ok', timeout: 3000 });
  }

  /**
   * An error the server sent (chat errors are shown in the chat instead).
   * @param {{code: string, fatal: boolean}} error
   */
  serverError({ code, fatal }) {
    if (fatal) {
      this.notices.show('server-error', FRIENDLY_ERRORS[code], { tone: 'error', code });
    } else if (code === 'rate_limited') {
      this.notices.show('server-error', FRIENDLY_ERRORS[code], { tone: 'warn', code, timeout: 5000 });
    } else {
      // A client/server mismatch; tell the user briefly, details are in the console.
      this.notices.show('server-error', `The server refused a request (${code || 'unknown error'}).`, { tone: 'warn', code, timeout: 6000 });
    }
  }

  /** The socket closed: say why, with a countdown to the next attempt and a "Retry now" button. */
  disconnected() {
    const { kind, base, code } = this._connectionNotice();
    const text = () => {
      const left = this.client.retryAt - Date.now();
      return left > 0 ? `${base} Retrying in ${formatSeconds(left)}…` : `${base} Reconnecting…`;
    };
    for (const k of CONNECTION_KINDS) if (k !== kind) this.notices.clear(k);
    this.notices.show(kind, text(), {
      tone: kind === 'unreachable' || kind === 'server-error' ? 'error' : 'warn',
      code,
      dismissible: false,
      actions: [{ label: 'Retry now', primary: true, onClick: () => this.client.retryNow() }],
    });
    this._stopCountdown();
    this._countdown = setInterval(() => this.notices.updateText(kind, text()), COUNTDOWN_TICK_MS);
  }

  /** A reconnect attempt starts now. */
  reconnecting() {
    const { kind, base } = this._connectionNotice();
    if (this.notices.has(kind)) this.notices.updateText(kind, `${base} Reconnecting…`);
  }

  /** @param {string} state  the peer connection's connectionState ('closed' once it is gone) */
  mediaState(state) {
    this._mediaState = state;
    if (state === 'connected') {
      clearTimeout(this._unstableTimer);
      this.notices.clear('media-unstable');
    } else if (state === 'disconnected') {
      clearTimeout(this._unstableTimer);
      this._unstableTimer = setTimeout(() => {
        if (this._mediaState === 'disconnected') {
          this.notices.show('media-unstable', 'The video connection is unstable… trying to recover.', { tone: 'info', dismissible: false });
        }
      }, UNSTABLE_AFTER_MS);
    } else if (state === 'failed') {
      clearTimeout(this._unstableTimer);
      this.notices.clear('media-unstable');
      this.notices.show('media-failed', 'The video connection failed. Reconnecting…', { tone: 'warn', timeout: 8000 });
    } else if (state === 'closed') {
      clearTimeout(this._unstableTimer);
    }
  }

  /** @param {'offer' | 'answer'} stage */
  negotiationError(stage) {
    const message = stage === 'offer'
      ? "Your browser couldn't set up a video connection. Try reloading the page."
      : "The server's video setup didn't work with this browser.";
    this.notices.show('server-error', message, { tone: 'error' });
  }

  _stopCountdown() {
    clearInterval(this._countdown);
    this._countdown = undefined;
  }

  /** @returns {{kind: string, base: string, code: string}} */
  _connectionNotice() {
    const fatal = this.client.fatalError;
    if (fatal) {
      return { kind: 'server-error', base: FRIENDLY_ERRORS[fatal.code] || 'The server closed the connection.', code: fatal.code };
    }
    if (this.client.everWelcomed) return { kind: 'disconnected', base: 'Connection to the server was lost.', code: '' };
    return { kind: 'unreachable', base: "Can't reach the server. Check your internet connection.", code: '' };
  }
}
