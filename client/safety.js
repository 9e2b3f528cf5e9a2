// The service's safety rules as the protocol client needs them, without the DOM: the rules to accept
// before Start (and the version accepted in this visit), report messages, and what a ban says.

/** What a person can be reported for (the `reason` of a `report`). */
export const REPORT_REASONS = Object.freeze(['nudity', 'harassment', 'minor', 'spam', 'other']);

/** @typedef {{version: string, text: string, language: string | null}} Rules */

export class RulesConsent {
  constructor() {
    /** @type {Rules | null} the server's current rules (null: it asks for none) */
    this.rules = null;
    /** @type {string | null} the version accepted in this visit */
    this.accepted = null;
  }

  /** The current rules were accepted (or the server asks for none). */
  get ok() {
    return !this.rules || this.accepted === this.rules.version;
  }

  /**
   * The server's rules, from `welcome` (or a `rules_changed` error).
   * @param {unknown} raw
   * @returns {Rules | null}
   */
  update(raw) {
    const r = /** @type {Record<string, unknown> | null} */ (raw && typeof raw === 'object' ? raw : null);
    this.rules = r && typeof r.version === 'string'
      ? {
        version: r.version,
        text: typeof r.text === 'string' ? r.text : '',
        language: typeof r.language === 'string' ? r.language : null,
      }
      : null;
    return this.rules;
  }
}

/**
 * The `report` message (an empty note is left out).
 * @param {string} reason  one of REPORT_REASONS
 * @param {string} [note]
 */
export function reportMessage(reason, note) {
  /** @type {Record<string, string>} */
  const msg = { type: 'report', reason };
  if (note && note.trim()) msg.note = note.trim();
  return msg;
}

/**
 * A `reported` or `moderation` message as the protocol client's event, `[type, detail]`; else null.
 * @param {Record<string, unknown>} msg
 * @returns {[string, object] | null}
 */
export function safetyEvent(msg) {
  if (msg.type === 'reported' && typeof msg.report_id === 'number') return ['reported', { reportId: msg.report_id }];
  if (msg.type === 'moderation') return ['moderation', { action: String(msg.action || ''), reason: String(msg.reason || '') }];
  return null;
}

/**
 * What a `banned` error says: until when (ISO 8601) and why.
 * @param {Record<string, unknown>} msg
 */
export function banOf(msg) {
  return { until: String(msg.until || ''), reason: String(msg.reason || '') };
}
