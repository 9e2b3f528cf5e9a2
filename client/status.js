// The status line (#status[data-state], mirrored on <body data-state>) and the "N online" pill.

import { $ } from './dom.js';
import { setText } from './i18n.js';

/** @type {Record<string, string>} the usual text for each state */
const STATUS_TEXT = {
  idle: 'status.idle',
  waiting: 'status.waiting',
  paired: 'status.paired',
};

export class StatusLine {
  /** @param {HTMLElement} root  #status */
  constructor(root) {
    this.root = root;
    this.text = $('.status__text', root);
  }

  /**
   * @param {'idle' | 'waiting' | 'paired'} state
   * @param {string} [key]  text key instead of the usual one for that state
   */
  set(state, key) {
    this.root.dataset.state = state;
    document.body.dataset.state = state;
    setText(this.text, key || STATUS_TEXT[state] || 'status.idle');
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
      setText(this.root, 'online.offline');
    } else {
      this.root.dataset.count = String(count);
      setText(this.root, 'online.count', { count });
    }
  }
}
