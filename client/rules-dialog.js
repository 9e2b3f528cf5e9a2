// The service's rules, shown before the first Start and accepted once per visit. The text comes from
// the server operator and is always shown as text (textContent), never as HTML.

import { t } from './i18n.js';

export class RulesDialog {
  /**
   * @param {object} els
   * @param {HTMLDialogElement} els.dialog  #rules-dialog
   * @param {HTMLElement} els.text          where the rules' text goes
   * @param {HTMLButtonElement} els.accept
   * @param {(version: string) => void} onAccept
   */
  constructor({ dialog, text, accept }, onAccept) {
    this.dialog = dialog;
    this.text = text;
    this.acceptButton = accept;
    /** @type {string | null} */
    this.version = null;
    accept.addEventListener('click', () => {
      const { version } = this;
      this.close();
      if (version) onAccept(version);
    });
  }

  /**
   * The server's rules arrived (on connect, or because they changed).
   * @param {{version: string, text: string, accepted: boolean}} rules
   */
  set({ version, text, accepted }) {
    this.version = version;
    this.text.textContent = text;
    if (accepted) this.close();
    else this.open();
  }

  open() {
    if (!this.version || this.dialog.open) return;
    this.acceptButton.textContent = t('moderation.rules.accept');
    this.dialog.showModal();
    this.acceptButton.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
