// Reporting the partner: the flag button on their video (and the R key when not typing), a reason
// and an optional note. Available while paired and for a while after the partner left.

import { t } from './i18n.js';

/** How long after a conversation ends its partner can still be reported (the server's default). */
export const REPORT_WINDOW_MS = 30000;
const MAX_NOTE = 500;

export class ReportDialog {
  /**
   * @param {object} els
   * @param {HTMLButtonElement} els.button   #report, on the partner's video
   * @param {HTMLDialogElement} els.dialog   #report-dialog
   * @param {HTMLFormElement} els.form
   * @param {HTMLTextAreaElement} els.note
   * @param {HTMLButtonElement} els.cancel
   * @param {(reason: string, note: string) => void} onSend
   */
  constructor({ button, dialog, form, note, cancel }, onSend) {
    this.button = button;
    this.dialog = dialog;
    this.form = form;
    this.note = note;
    this.available = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._expiry = undefined;
    note.maxLength = MAX_NOTE;
    button.addEventListener('click', () => this.open());
    cancel.addEventListener('click', () => this.dialog.close());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const reason = /** @type {RadioNodeList} */ (form.elements.namedItem('reason')).value;
      if (!reason) return;
      this.dialog.close();
      onSend(reason, note.value);
    });
    document.addEventListener('keydown', (e) => {
      if ((e.key !== 'r' && e.key !== 'R') || e.repeat || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (isTyping(e.target) || document.querySelector('dialog[open]')) return;
      if (!this.available) return;
      e.preventDefault();
      this.open();
    });
  }

  /**
   * What the conversation state means for reporting.
   * @param {'idle' | 'waiting' | 'paired'} state
   * @param {'idle' | 'waiting' | 'paired'} previous
   */
  setState(state, previous) {
    clearTimeout(this._expiry);
    if (state === 'paired') {
      this._setAvailable(true);
    } else if (previous === 'paired') {
      this._setAvailable(true);
      this._expiry = setTimeout(() => this._setAvailable(false), REPORT_WINDOW_MS);
    }
  }

  /** Reporting is over for this visit (e.g. banned). */
  disable() {
    clearTimeout(this._expiry);
    this._setAvailable(false);
    if (this.dialog.open) this.dialog.close();
  }

  open() {
    if (!this.available || this.dialog.open) return;
    this.form.reset();
    this.dialog.showModal();
  }

  /** @param {boolean} available */
  _setAvailable(available) {
    this.available = available;
    this.button.hidden = !available;
    this.button.title = t('moderation.report.label');
  }
}

/** @param {EventTarget | null} target */
function isTyping(target) {
  const node = /** @type {HTMLElement | null} */ (target);
  if (!node || !node.tagName) return false;
  return node.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(node.tagName);
}
