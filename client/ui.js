// Small DOM helpers. Everything that shows user- or server-provided text uses textContent.

export const $ = (sel, root = document) => root.querySelector(sel);

/** createElement with class and text (always textContent, never HTML). */
export function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

// --------------------------------------------------------------------------------------------
// Status line: #status[data-state=idle|waiting|paired]

const STATUS_TEXT = {
  idle: 'Idle — press Start',
  waiting: 'Looking for a partner…',
  paired: 'Connected to a stranger',
};

export class StatusLine {
  constructor(root) {
    this.root = root;
    this.text = root.querySelector('.status__text');
  }

  set(state, text) {
    this.root.dataset.state = state;
    this.text.textContent = text || STATUS_TEXT[state] || state;
  }
}

// --------------------------------------------------------------------------------------------
// Notice banner: #notice[data-kind]. Several notices can be active; the newest is shown.

export class Notices {
  constructor(root) {
    this.root = root;
    this.textEl = root.querySelector('.notice__text');
    this.actionsEl = root.querySelector('.notice__actions');
    this.closeBtn = root.querySelector('.notice__close');
    this.active = new Map(); // kind -> {message, actions, tone, code, dismissible}
    this._timers = new Map();
    this.closeBtn.addEventListener('click', () => {
      const kind = this.root.dataset.kind;
      if (kind) this.clear(kind);
    });
  }

  /**
   * Show (or update) a notice.
   * actions: [{label, onClick, primary}]; tone: 'error' | 'warn' | 'info' | 'ok'.
   */
  show(kind, message, { actions = [], tone = 'warn', code = '', dismissible = true, timeout = 0 } = {}) {
    const prev = this.active.get(kind);
    this.active.delete(kind);
    this.active.set(kind, { message, actions, tone, code, dismissible });
    clearTimeout(this._timers.get(kind));
    if (timeout > 0) this._timers.set(kind, setTimeout(() => this.clear(kind), timeout));
    // Avoid re-rendering (and re-announcing) an identical countdown-free notice.
    this._render(prev && prev.message === message && this.root.dataset.kind === kind);
  }

  /** Update only the text of an active notice (used for countdowns). */
  updateText(kind, message) {
    const n = this.active.get(kind);
    if (!n) return;
    n.message = message;
    if (this.root.dataset.kind === kind) this.textEl.textContent = message;
  }

  has(kind) {
    return this.active.has(kind);
  }

  clear(kind) {
    clearTimeout(this._timers.get(kind));
    this._timers.delete(kind);
    if (this.active.delete(kind)) this._render(false);
  }

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

// --------------------------------------------------------------------------------------------
// Chat log: #chat-log (role=log, aria-live=polite)

export class ChatLog {
  constructor(root) {
    this.root = root;
  }

  clear() {
    this.root.replaceChildren();
  }

  /** who: 'me' | 'them' | 'system' */
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
    // Keep the log from growing without bound during a long conversation.
    while (this.root.childElementCount > 500) this.root.firstElementChild.remove();
    if (nearBottom || who === 'me') this.root.scrollTop = this.root.scrollHeight;
    return line;
  }
}

// --------------------------------------------------------------------------------------------
// Select helper for the device pickers

export function fillSelect(select, items, currentId, emptyLabel) {
  const options = items.length
    ? items.map((d) => {
      const o = el('option', { text: d.label });
      o.value = d.id;
      return o;
    })
    : [Object.assign(el('option', { text: emptyLabel }), { value: '' })];
  select.replaceChildren(...options);
  select.disabled = items.length === 0;
  if (currentId && items.some((d) => d.id === currentId)) select.value = currentId;
}

export function formatSeconds(ms) {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return `${s} s`;
}
