// Local camera / microphone handling.
//
// `LocalMedia.stream` always exists (possibly without tracks) so the preview element can keep it.
// Tracks are replaced in place when the user picks another device or grants access later; the peer
// connection is updated with `RTCRtpSender.replaceTrack` by the caller (no renegotiation).

const VIDEO_CONSTRAINTS = {
  width: { ideal: 640 },
  height: { ideal: 480 },
  frameRate: { ideal: 24, max: 30 },
};
const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

/** @typedef {'audio' | 'video'} Kind */

/**
 * Map a getUserMedia error to one of: denied | notfound | busy | unsupported | other.
 * @param {unknown} err
 * @returns {'denied' | 'notfound' | 'busy' | 'unsupported' | 'other'}
 */
export function classifyMediaError(err) {
  const name = err && /** @type {{name?: unknown}} */ (err).name;
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
    case 'ConstraintNotSatisfiedError':
      return 'notfound';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'busy';
    case 'TypeError':
      return 'unsupported';
    default:
      return 'other';
  }
}

export class LocalMedia extends EventTarget {
  constructor() {
    super();
    this.stream = new MediaStream();
    // The user's wishes survive device switches and re-acquisition.
    this.audioEnabled = true;
    this.videoEnabled = true;
  }

  get supported() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  get audioTrack() {
    return this.stream.getAudioTracks()[0] || null;
  }

  get videoTrack() {
    return this.stream.getVideoTracks()[0] || null;
  }

  /** @param {Kind} kind */
  track(kind) {
    return kind === 'audio' ? this.audioTrack : this.videoTrack;
  }

  /**
   * Ask for camera + microphone, falling back to whatever is available.
   * Resolves to {audio: bool, video: bool, problem: null | {kind, error}} and never rejects.
   * `problem.kind` is the classification of the first (camera+mic) failure.
   */
  async acquire({ audio = true, video = true } = {}) {
    if (!this.supported) {
      return { audio: false, video: false, problem: { kind: 'unsupported', error: null } };
    }
    const wanted = [];
    if (audio && video) wanted.push({ audio: true, video: true });
    if (audio) wanted.push({ audio: true, video: false });
    if (video) wanted.push({ audio: false, video: true });

    /** @type {null | {kind: string, error: unknown}} */
    let problem = null;
    for (const want of wanted) {
      try {
        const got = await navigator.mediaDevices.getUserMedia({
          audio: want.audio ? AUDIO_CONSTRAINTS : false,
          video: want.video ? VIDEO_CONSTRAINTS : false,
        });
        for (const t of got.getTracks()) this._install(t);
        return {
          audio: !!this.audioTrack,
          video: !!this.videoTrack,
          problem,
        };
      } catch (err) {
        const kind = classifyMediaError(err);
        const e = /** @type {{name?: string, message?: string} | null} */ (err);
        console.warn('getUserMedia failed', want, e && e.name, e && e.message);
        if (!problem) problem = { kind, error: err };
        // A refusal is the user's decision: do not ask again and again.
        if (kind === 'denied' || kind === 'unsupported') break;
      }
    }
    return { audio: !!this.audioTrack, video: !!this.videoTrack, problem };
  }

  /**
   * Open a specific device. Returns {track, old} — the caller swaps senders, then stops `old`.
   * @param {Kind} kind
   * @param {string} deviceId
   */
  async openDevice(kind, deviceId) {
    const constraints = kind === 'audio'
      ? { audio: { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } }, video: false }
      : { audio: false, video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } };
    const got = await navigator.mediaDevices.getUserMedia(constraints);
    const track = kind === 'audio' ? got.getAudioTracks()[0] : got.getVideoTracks()[0];
    const old = this.track(kind);
    this._install(track);
    return { track, old };
  }

  /**
   * @param {Kind} kind
   * @param {boolean} enabled
   */
  setEnabled(kind, enabled) {
    if (kind === 'audio') this.audioEnabled = enabled;
    else this.videoEnabled = enabled;
    const t = this.track(kind);
    if (t) t.enabled = enabled;
    this.dispatchEvent(new CustomEvent('change'));
  }

  /** @param {Kind} kind */
  currentDeviceId(kind) {
    const t = this.track(kind);
    if (!t) return '';
    const s = typeof t.getSettings === 'function' ? t.getSettings() : {};
    return s.deviceId || '';
  }

  async listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
      return { audio: [], video: [] };
    }
    /** @type {MediaDeviceInfo[]} */
    let all = [];
    try {
      all = await navigator.mediaDevices.enumerateDevices();
    } catch (err) {
      console.warn('enumerateDevices failed', err);
    }
    /**
     * @param {MediaDeviceKind} kind
     * @param {string} fallback
     */
    const pick = (kind, fallback) => all
      .filter((d) => d.kind === kind && d.deviceId)
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${fallback} ${i + 1}` }));
    return { audio: pick('audioinput', 'Microphone'), video: pick('videoinput', 'Camera') };
  }

  stopAll() {
    for (const t of this.stream.getTracks()) {
      t.stop();
      this.stream.removeTrack(t);
    }
  }

  /** @param {MediaStreamTrack} track */
  _install(track) {
    const kind = /** @type {Kind} */ (track.kind);
    for (const old of (kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks())) {
      this.stream.removeTrack(old);
    }
    track.enabled = kind === 'audio' ? this.audioEnabled : this.videoEnabled;
    track.addEventListener('ended', () => {
      // Device unplugged or revoked.
      if (this.track(kind) === track) {
        this.stream.removeTrack(track);
        this.dispatchEvent(new CustomEvent('ended', { detail: { kind } }));
        this.dispatchEvent(new CustomEvent('change'));
      }
    });
    this.stream.addTrack(track);
    this.dispatchEvent(new CustomEvent('change'));
  }
}
