// Notice banner: #notice[data-kind][data-tone][data-code]. Several notices can be active at once,
// each under its own `kind`; the newest is shown.

import { $, el } from './dom.js';

/**
 * @typedef {{label: string, onClick: () => void, primary?: boolean}} NoticeAction
 * @typedef {{actions?: NoticeAction[], tone?: 'error' | 'warn' | 'info' | 'ok', code?: string,
 *            dismissible?: boolean, timeout?: number}} NoticeOptions
 * @typedef {{message: string, actions: NoticeAction[], tone: string, code: string, dismissible: boolean}} Notice
 */

export class Notices {
  /** @param {HTMLElement} root  #notice */
  constructor(root) {
    this.root = root;
    this.textEl = $('.notice__text', root);
    this.actionsEl = $('.notice__actions', root);
    this.closeBtn = $('.notice__close', root);
    /** @type {Map<string, Notice>} */
    this.active = new Map();
    /** @type {Map<string, ReturnType<typeof setTimeout>>} */
    this._timers = new Map();
    this.closeBtn.addEventListener('click', () => {
      const kind = this.root.dataset.kind;
      if (kind) this.clear(kind);
    });
  }

  /**
   * Show (or update) a notice.
   * @param {string} kind
   * @param {string} message
   * @param {NoticeOptions} [opts]
   */
  show(kind, message, { actions = [], tone = 'warn', code = '', dismissible = true, timeout = 0 } = {}) {
    const prev = this.active.get(kind);
    this.active.delete(kind);
    this.active.set(kind, { message, actions, tone, code, dismissible });
    clearTimeout(this._timers.get(kind));
    if (timeout > 0) this._timers.set(kind, setTimeout(() => this.clear(kind), timeout));
    // Avoid re-rendering (and re-announcing) an identical countdown-free notice.
    this._render(!!prev && prev.message === message && this.root.dataset.kind === kind);
  }

  /**
   * Update only the text of an active notice (used for countdowns).
   * @param {string} kind
   * @param {string} message
   */
  updateText(kind, message) {
    const n = this.active.get(kind);
    if (!n) return;
    n.message = message;
    if (this.root.dataset.kind === kind) this.textEl.textContent = message;
  }

  /** @param {string} kind */
  has(kind) {
    return this.active.has(kind);
  }

  /** @param {string} kind */
  clear(kind) {
    clearTimeout(this._timers.get(kind));
    this._timers.delete(kind);
    if (this.active.delete(kind)) this._render(false);
  }

  /** @param {boolean} sameAsBefore */
  _render(sameAsBefore) {
    const entries = [...this.active.entries()];
    if (!entries.length) {
      this.root.hidden = true;
      this.root.dataset.kind = '';
      this.root.dataset.code = '';
      this.textEl.textContent = '';
      this.actionsEl.replaceChildren();
      return;
    }
    const [kind, n] = entries[entries.length - 1];
    if (sameAsBefore) return;
    this.root.hidden = false;
    this.root.dataset.kind = kind;
    this.root.dataset.tone = n.tone;
    this.root.dataset.code = n.code || '';
    this.textEl.textContent = n.message;
    this.closeBtn.hidden = !n.dismissible;
    this.actionsEl.replaceChildren(...n.actions.map((a) => {
      const b = el('button', { cls: a.primary ? 'btn btn--small btn--accent' : 'btn btn--small btn--ghost', text: a.label, attrs: { type: 'button' } });
      b.addEventListener('click', a.onClick);
      return b;
    }));
  }
}
