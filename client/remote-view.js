// The partner's video: the overlay that covers it between partners (so a stale frame from an old
// partner is never visible), the reveal once fresh frames arrive, and browsers' autoplay policies
// (play muted and offer "Tap to hear your partner" when sound needs a user gesture).

/** Reveal after this many fresh frames, or this many frames of any age. */
const FRESH_FRAMES = 2;
const ANY_FRAMES = 6;
/** Without requestVideoFrameCallback: assume a fresh frame after this long. */
const FALLBACK_REVEAL_MS = 700;
/** The partner may send no video at all (audio-only): show whatever the server sends after this. */
const REVEAL_ANYWAY_MS = 5000;

export class RemoteView {
  /**
   * @param {object} els
   * @param {HTMLElement} els.root     #remote[data-visible]
   * @param {HTMLVideoElement} els.video
   * @param {HTMLElement} els.overlay  #remote-overlay[data-spinner]
   * @param {HTMLElement} els.title
   * @param {HTMLElement} els.hint
   * @param {HTMLButtonElement} els.unmute
   * @param {(now: number) => void} [onFirstFrame]  the first fresh frame after each reveal request
   */
  constructor({ root, video, overlay, title, hint, unmute }, onFirstFrame = () => {}) {
    this.root = root;
    this.video = video;
    this.overlay = overlay;
    this.title = title;
    this.hint = hint;
    this.unmuteButton = unmute;
    this.onFirstFrame = onFirstFrame;
    /** Bumped by every cover/reveal request; an older request's callbacks do nothing. */
    this._token = 0;
    /** The browser refused unmuted playback before a user gesture. */
    this.autoplayMuted = false;
    this.paired = false;
    unmute.addEventListener('click', () => this.unlockAudio());
  }

  /**
   * Cover the partner's video.
   * @param {string} title
   * @param {string} [hint]
   * @param {{spinner?: boolean}} [opts]
   */
  cover(title, hint = '', { spinner = false } = {}) {
    this._token += 1;
    this._setOverlay(title, hint, spinner);
  }

  /** After `paired`: uncover the video once a frame from the new partner has been rendered. */
  revealWhenFresh() {
    const token = ++this._token;
    const since = performance.now();
    this._setOverlay('Connecting video…', '', true);

    const reveal = () => {
      if (token === this._token) this.root.dataset.visible = 'true';
    };
    const v = this.video;
    if (typeof v.requestVideoFrameCallback === 'function') {
      let fresh = 0;
      let seen = 0;
      /** @type {VideoFrameRequestCallback} */
      const onFrame = (_now, meta) => {
        if (token !== this._token) return;
        seen += 1;
        // receiveTime shares performance.now()'s time base: skip frames that were in flight.
        const isFresh = meta && typeof meta.receiveTime === 'number' ? meta.receiveTime >= since : seen >= 2;
        if (isFresh) {
          fresh += 1;
          if (fresh === 1) this.onFirstFrame(performance.now());
        }
        if (fresh >= FRESH_FRAMES || seen >= ANY_FRAMES) reveal();
        else v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
    } else {
      setTimeout(() => {
        if (token === this._token) this.onFirstFrame(performance.now());
        reveal();
      }, FALLBACK_REVEAL_MS);
    }
    setTimeout(reveal, REVEAL_ANYWAY_MS);
  }

  /** @param {MediaStream | null} stream  the partner's media, or null once the connection is gone */
  setStream(stream) {
    this.video.srcObject = stream;
    if (stream) this.play();
  }

  /** @param {boolean} paired  the unmute button is offered only while paired */
  setPaired(paired) {
    this.paired = paired;
    this._renderUnmute();
  }

  play() {
    const v = this.video;
    if (!v.srcObject) return;
    const p = v.play();
    if (p && typeof p.catch === 'function') {
      p.catch((err) => {
        if (err && err.name === 'NotAllowedError' && !v.muted) {
          // Sound needs a user gesture: play muted for now and offer a button while paired.
          v.muted = true;
          this.autoplayMuted = true;
          this._renderUnmute();
          v.play().catch(() => {});
        }
      });
    }
  }

  /** Call from click/key handlers (user gestures) to lift autoplay restrictions. */
  unlockAudio() {
    if (this.autoplayMuted) {
      this.video.muted = false;
      this.autoplayMuted = false;
      this._renderUnmute();
    }
    this.play();
  }

  /**
   * @param {string} title
   * @param {string} hint
   * @param {boolean} spinner
   */
  _setOverlay(title, hint, spinner) {
    this.root.dataset.visible = 'false';
    this.overlay.dataset.spinner = String(spinner);
    this.title.textContent = title;
    this.hint.textContent = hint;
  }

  _renderUnmute() {
    this.unmuteButton.hidden = !(this.autoplayMuted && this.paired);
  }
}
