// The local preview (#local[data-camera=pending|none|off|on]) and the microphone / camera toggles.

/** @typedef {import('./media.js').LocalMedia} LocalMedia */

const PLACEHOLDER_TEXT = {
  pending: 'Starting camera…', none: 'No camera', off: 'Camera off', on: '',
};

export class LocalView {
  /**
   * @param {object} els
   * @param {HTMLElement} els.root         #local
   * @param {HTMLVideoElement} els.video   the (muted, mirrored) preview
   * @param {HTMLElement} els.placeholder  text shown instead of the preview
   * @param {HTMLButtonElement} els.muteMic
   * @param {HTMLButtonElement} els.cameraOff
   * @param {LocalMedia} media
   */
  constructor({ root, video, placeholder, muteMic, cameraOff }, media) {
    this.root = root;
    this.video = video;
    this.placeholder = placeholder;
    this.muteMic = muteMic;
    this.cameraOff = cameraOff;
    this.media = media;
    /** The camera is being asked for (permission prompts can take a while). */
    this.pending = true;

    muteMic.addEventListener('click', () => {
      media.setEnabled('audio', !media.audioEnabled);
      this.render();
    });
    cameraOff.addEventListener('click', () => {
      media.setEnabled('video', !media.videoEnabled);
      this.render();
    });
  }

  /** @param {boolean} pending */
  setPending(pending) {
    this.pending = pending;
    this.render();
  }

  render() {
    const { media, muteMic, cameraOff } = this;
    const a = media.audioTrack;
    const v = media.videoTrack;
    muteMic.disabled = !a;
    cameraOff.disabled = !v;
    const micOff = !a || !media.audioEnabled;
    const camOff = !v || !media.videoEnabled;
    muteMic.setAttribute('aria-pressed', String(!!a && !media.audioEnabled));
    cameraOff.setAttribute('aria-pressed', String(!!v && !media.videoEnabled));
    muteMic.dataset.off = String(micOff);
    cameraOff.dataset.off = String(camOff);
    muteMic.title = !a ? 'No microphone' : (media.audioEnabled ? 'Mute microphone' : 'Unmute microphone');
    cameraOff.title = !v ? 'No camera' : (media.videoEnabled ? 'Turn camera off' : 'Turn camera on');

    this._renderPreview();
    /** @type {keyof typeof PLACEHOLDER_TEXT} */
    let cam = 'on';
    if (!v) cam = this.pending ? 'pending' : 'none';
    else if (!media.videoEnabled) cam = 'off';
    this.root.dataset.camera = cam;
    this.placeholder.textContent = PLACEHOLDER_TEXT[cam];
  }

  /**
   * The preview shows only the camera track. An element whose stream has no video would never
   * reach "loaded" and would hold back the page's load event, so it gets no stream at all then.
   */
  _renderPreview() {
    const v = this.media.videoTrack;
    const el = this.video;
    const current = /** @type {MediaStream | null} */ (el.srcObject);
    const shown = current ? current.getVideoTracks()[0] : null;
    if (shown === v) return;
    el.srcObject = v ? new MediaStream([v]) : null;
    if (v) el.play().catch(() => {});
  }
}
