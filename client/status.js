// The status line (#status[data-state], mirrored on <body data-state>) and the "N online" pill.

import { $ } from './dom.js';

const STATUS_TEXT = {
  idle: 'Idle — press Start',
  waiting: 'Looking for a partner…',
  paired: 'Connected to a stranger',
};

export class StatusLine {
  /** @param {HTMLElement} root  #status */
  constructor(root) {
    this.root = root;
    this.text = $('.status__text', root);
  }

  /**
   * @param {'idle' | 'waiting' | 'paired'} state
   * @param {string} [text]  instead of the usual text for that state
   */
  set(state, text) {
    this.root.dataset.state = state;
    document.body.dataset.state = state;
    this.text.textContent = text || STATUS_TEXT[state] || state;
  }
}

export class OnlineCount {
  /** @param {HTMLElement} root  #online */
  constructor(root) {
    this.root = root;
  }

  /** @param {number | null} count  null: not connected */
  set(count) {
    if (count === null) {
      this.root.dataset.count = '';
      this.root.textContent = 'Offline';
    } else {
      this.root.dataset.count = String(count);
      this.root.textContent = `${count.toLocaleString()} online`;
    }
  }
}
