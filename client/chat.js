// The text chat: the log (#chat-log, role=log) and the form. Enter sends; the input opens only
// while paired. Messages are always shown as text, never parsed as HTML.

import { el } from './dom.js';

/** The log keeps at most this many lines during a long conversation. */
const MAX_LINES = 500;

export class ChatLog {
  /** @param {HTMLElement} root  #chat-log */
  constructor(root) {
    this.root = root;
  }

  clear() {
    this.root.replaceChildren();
  }

  /**
   * @param {'me' | 'them' | 'system'} who
   * @param {string} text
   */
  add(who, text) {
    const nearBottom = this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 60;
    let line;
    if (who === 'system') {
      line = el('p', { cls: 'msg msg--system', text });
    } else {
      const label = who === 'me' ? 'You:' : 'Stranger:';
      line = el('p', { cls: `msg msg--${who}` }, [
        el('span', { cls: 'msg__who', text: label }),
        ' ',
        el('span', { cls: 'msg__text', text }),
      ]);
    }
    this.root.append(line);
    while (this.root.childElementCount > MAX_LINES) this.root.firstElementChild?.remove();
    if (nearBottom || who === 'me') this.root.scrollTop = this.root.scrollHeight;
    return line;
  }
}

export class ChatPanel {
  /**
   * @param {object} els
   * @param {HTMLElement} els.log    #chat-log
   * @param {HTMLFormElement} els.form
   * @param {HTMLInputElement} els.input
   * @param {HTMLButtonElement} els.send
   * @param {(text: string) => boolean} send  deliver a message; false if the connection is gone
   */
  constructor({ log, form, input, send: sendButton }, send) {
    this.log = new ChatLog(log);
    this.input = input;
    this.sendButton = sendButton;
    this.send = send;
    this.paired = false;

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    input.addEventListener('input', () => this._render());
  }

  /** @param {boolean} paired */
  setPaired(paired) {
    this.paired = paired;
    this._render();
  }

  /**
   * @param {'me' | 'them' | 'system'} who
   * @param {string} text
   */
  add(who, text) {
    this.log.add(who, text);
  }

  clear() {
    this.log.clear();
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if (!this.paired) {
      this.add('system', "You're not connected to anyone yet — press Start.");
      return;
    }
    if (!this.send(text)) {
      this.add('system', 'Not sent: the connection was lost.');
      return;
    }
    this.add('me', text);
    this.input.value = '';
    this._render();
  }

  _render() {
    this.sendButton.disabled = !this.paired || this.input.value.trim() === '';
    this.input.placeholder = this.paired ? 'Say hi…' : 'Chat opens when connected';
  }
}
