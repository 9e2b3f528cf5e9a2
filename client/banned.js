// A banned visitor: a clear notice saying until when and why, the controls turned off, and no
// reconnecting (the protocol client stops by itself).

import { i18n, t } from './i18n.js';

/** @typedef {import('./notices.js').Notices} Notices */

/**
 * The ban's end in the visitor's language and time zone (the text as sent if it is not a date).
 * @param {string} until  ISO 8601
 */
export function formatUntil(until) {
  const date = new Date(until);
  if (Number.isNaN(date.getTime())) return until;
  try {
    return date.toLocaleString(i18n.lang, { dateStyle: 'medium', timeStyle: 'short' });
  } catch {
    return date.toLocaleString();
  }
}

export class BannedView {
  /**
   * @param {Notices} notices
   * @param {{cover: (title: string, hint?: string) => void}} remote
   * @param {{set: (state: 'idle', text?: string) => void}} status
   * @param {HTMLButtonElement[]} buttons  turned off for good
   */
  constructor(notices, remote, status, buttons) {
    this.notices = notices;
    this.remote = remote;
    this.status = status;
    this.buttons = buttons;
  }

  /** @param {{until: string, reason: string}} ban */
  show({ until, reason }) {
    const when = formatUntil(until);
    const text = [t('moderation.banned', { until: when }), reason ? t('moderation.banned_reason', { reason }) : '']
      .filter(Boolean).join(' ');
    for (const kind of ['unreachable', 'disconnected', 'server-error']) this.notices.clear(kind);
    this.notices.show('banned', text, { tone: 'error', code: 'banned', dismissible: false });
    this.remote.cover(t('moderation.banned_title'), t('moderation.banned_hint', { until: when }));
    this.status.set('idle', t('moderation.banned_title'));
    for (const button of this.buttons) button.disabled = true;
  }
}
