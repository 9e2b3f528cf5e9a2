// The service's safety rules as the protocol client needs them, without the DOM: the rules to accept
// before Start (and the version accepted in this visit), report messages, what a ban says, and the
// visit's safety state (`Safety`) that the protocol client keeps and reads the server's messages with.

/** What a person can be reported for (the `reason` of a `report`). */
export const REPORT_REASONS = Object.freeze(['nudity', 'harassment', 'minor', 'spam', 'other']);

/** @typedef {{version: string, text: string, language: string | null}} Rules */
/** @typedef {{until: string, reason: string}} Ban */

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
  if (msg.type === 'moderation') return ['moderation', { action: String(msg.action || ''), reason: msg.reason ? String(msg.reason) : null }];
  return null;
}

/**
 * What a `banned` error says: until when (ISO 8601) and why.
 * @param {Record<string, unknown>} msg
 * @returns {Ban}
 */
export function banOf(msg) {
  return { until: String(msg.until || ''), reason: String(msg.reason || '') };
}

/**
 * One visit's safety state: the rules and the version agreed to (agreed again by itself after a
 * reconnect while the rules are unchanged), reports, and the ban once there is one. It has no socket
 * of its own: `send` puts a message on the protocol client's and says whether it went out.
 */
export class Safety {
  /** @param {(msg: Record<string, unknown>) => boolean} send */
  constructor(send) {
    this.consent = new RulesConsent();
    /** @type {Ban | null} set once this device is banned */
    this.banned = null;
    this._send = send;
  }

  /** @returns {Rules | null} the rules to accept before Start (null: none asked) */
  get rules() { return this.consent.rules; }

  /** The current rules were accepted (or the server asks for none). */
  get accepted() { return this.consent.ok; }

  /**
   * Agree to the rules of `version`.
   * @param {string} version
   * @returns {boolean} the acceptance went out now (if not, it goes with the next `welcome`'s rules)
   */
  accept(version) {
    this.consent.accepted = version;
    return this._send({ type: 'accept_rules', version });
  }

  /**
   * Report the partner (or the last one, shortly after they left).
   * @param {string} reason  one of REPORT_REASONS
   * @param {string} [note]
   * @returns {boolean} the report went out
   */
  report(reason, note) {
    return this._send(reportMessage(reason, note));
  }

  /**
   * What a server message means for safety, as the protocol client's event `[type, detail]` (null:
   * nothing): `welcome`'s or a `rules_changed` error's rules → 'rules'; a `banned` error → 'banned'
   * (kept in `banned`); `reported` and `moderation` (see safetyEvent).
   * @param {Record<string, unknown>} msg
   * @returns {[string, object] | null}
   */
  read(msg) {
    if (msg.type === 'welcome' || (msg.type === 'error' && msg.code === 'rules_changed')) return this._rules(msg.rules);
    if (msg.type === 'error' && msg.code === 'banned') {
      this.banned = banOf(msg);
      return ['banned', { ...this.banned }];
    }
    return safetyEvent(msg);
  }

  /** @param {unknown} raw  the server's rules; a version agreed earlier this visit is accepted again */
  _rules(raw) {
    const rules = this.consent.update(raw);
    if (!rules) return null;
    if (this.consent.ok) this._send({ type: 'accept_rules', version: rules.version });
    return ['rules', { ...rules, accepted: this.consent.ok }];
  }
}
