// Start / Next / Stop, and the keyboard: Esc = Next from anywhere (including the chat input).

/** @typedef {'idle' | 'waiting' | 'paired'} State */

export class Controls {
  /**
   * @param {object} els
   * @param {HTMLButtonElement} els.start
   * @param {HTMLButtonElement} els.next
   * @param {HTMLButtonElement} els.stop
   * @param {object} actions
   * @param {() => void} actions.onStart
   * @param {() => void} actions.onNext
   * @param {() => void} actions.onStop
   * @param {() => boolean} [actions.onEscape]  gets Esc first; true if it used it (e.g. closed a menu)
   */
  constructor({ start, next, stop }, { onStart, onNext, onStop, onEscape = () => false }) {
    this.buttons = { start, next, stop };
    /** @type {State} */
    this.state = 'idle';
    start.addEventListener('click', onStart);
    next.addEventListener('click', onNext);
    stop.addEventListener('click', onStop);

    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || e.repeat || e.isComposing) return;
      if (onEscape()) {
        e.preventDefault();
        return;
      }
      if (this.state === 'idle') return;
      e.preventDefault();
      onNext();
    });
  }

  /** @param {State} state */
  setState(state) {
    this.state = state;
    this.buttons.start.disabled = state !== 'idle';
    this.buttons.next.disabled = state === 'idle';
    this.buttons.stop.disabled = state === 'idle';
  }
}
