// What the user is told about the server and the connection: refused requests, a lost or full
// server with a live "Retrying in N s…" countdown, an unstable or failed media connection.

import { formatSeconds } from './dom.js';
import { t } from './i18n.js';

/** @typedef {import('./notices.js').Notices} Notices */
/** @typedef {import('./protocol.js').ProtocolClient} ProtocolClient */

/** @type {Record<string, string>} error code → text key of what the user is told */
export const ERROR_TEXT = {
  server_full: 'error.server_full',
  shutting_down: 'error.shutting_down',
  bad_sdp: 'error.bad_sdp',
  internal_error: 'error.internal_error',
  rate_limited: 'error.rate_limited',
  chat_too_long: 'error.chat_too_long',
  chat_empty: 'error.chat_empty',
  not_paired: 'error.not_paired',
  bad_interests: 'error.bad_interests',
  too_many_interests: 'error.too_many_interests',
  interest_too_long: 'error.interest_too_long',
  bad_languages: 'error.bad_languages',
  too_many_languages: 'error.too_many_languages',
  bad_strict: 'error.bad_strict',
};

/** The text key for an error code, or null when there is none. */
export function errorTextKey(code) {
  return Object.prototype.hasOwnProperty.call(ERROR_TEXT, code) ? ERROR_TEXT[code] : null;
}

/** What the user is told about an error code (in the page's language). */
export function friendlyError(code) {
  const key = errorTextKey(code);
  return key ? t(key) : t('error.refused', { code: code || t('error.unknown') });
}

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
    if (reconnect) this.notices.show('reconnected', () => t('notice.reconnected'), { tone: 'ok', timeout: 3000 });
  }

  /**
   * An error the server sent (chat errors are shown in the chat instead).
   * @param {{code: string, fatal: boolean}} error
   */
  serverError({ code, fatal }) {
    const text = () => friendlyError(code);
    if (fatal) {
      this.notices.show('server-error', text, { tone: 'error', code });
    } else if (code === 'rate_limited') {
      this.notices.show('server-error', text, { tone: 'warn', code, timeout: 5000 });
    } else {
      // Refused preferences are explained; anything else is a client/server mismatch, told
      // briefly (details are in the console).
      this.notices.show('server-error', text, { tone: 'warn', code, timeout: 6000 });
    }
  }

  /** The socket closed: say why, with a countdown to the next attempt and a "Retry now" button. */
  disconnected() {
    const { kind, base, code } = this._connectionNotice();
    const text = () => {
      const left = this.client.retryAt - Date.now();
      return left > 0
        ? t('notice.retrying_in', { base: base(), time: formatSeconds(left) })
        : t('notice.reconnecting', { base: base() });
    };
    for (const k of CONNECTION_KINDS) if (k !== kind) this.notices.clear(k);
    this.notices.show(kind, text, {
      tone: kind === 'unreachable' || kind === 'server-error' ? 'error' : 'warn',
      code,
      dismissible: false,
      actions: [{ label: () => t('notice.retry_now'), primary: true, onClick: () => this.client.retryNow() }],
    });
    this._stopCountdown();
    this._countdown = setInterval(() => this.notices.updateText(kind, text), COUNTDOWN_TICK_MS);
  }

  /** A reconnect attempt starts now. */
  reconnecting() {
    const { kind, base } = this._connectionNotice();
    if (this.notices.has(kind)) this.notices.updateText(kind, () => t('notice.reconnecting', { base: base() }));
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
          this.notices.show('media-unstable', () => t('notice.media_unstable'), { tone: 'info', dismissible: false });
        }
      }, UNSTABLE_AFTER_MS);
    } else if (state === 'failed') {
      clearTimeout(this._unstableTimer);
      this.notices.clear('media-unstable');
      this.notices.show('media-failed', () => t('notice.media_failed'), { tone: 'warn', timeout: 8000 });
    } else if (state === 'closed') {
      clearTimeout(this._unstableTimer);
    }
  }

  /** @param {'offer' | 'answer'} stage */
  negotiationError(stage) {
    const key = stage === 'offer' ? 'notice.offer_failed' : 'notice.answer_failed';
    this.notices.show('server-error', () => t(key), { tone: 'error' });
  }

  _stopCountdown() {
    clearInterval(this._countdown);
    this._countdown = undefined;
  }

  /** @returns {{kind: string, base: () => string, code: string}} */
  _connectionNotice() {
    const fatal = this.client.fatalError;
    if (fatal) {
      const key = errorTextKey(fatal.code) || 'notice.closed';
      return { kind: 'server-error', base: () => t(key), code: fatal.code };
    }
    if (this.client.everWelcomed) return { kind: 'disconnected', base: () => t('notice.lost'), code: '' };
    return { kind: 'unreachable', base: () => t('notice.unreachable'), code: '' };
  }
}
