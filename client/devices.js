// The camera / microphone picker (#devices, a <details> menu): two selects and "Ask again".
//
// Events (CustomEvent, payload in `detail`):
//   'select'  {kind, deviceId}   the user picked a device ('audio' | 'video')
//   'retry'   {}                 the user asked for camera and microphone again

import { $, fillSelect } from './dom.js';

/** @typedef {import('./media.js').LocalMedia} LocalMedia */

export class DevicePicker extends EventTarget {
  /**
   * @param {object} els
   * @param {HTMLDetailsElement} els.root
   * @param {HTMLSelectElement} els.cameraSelect
   * @param {HTMLSelectElement} els.micSelect
   * @param {HTMLButtonElement} els.retry
   */
  constructor({ root, cameraSelect, micSelect, retry }) {
    super();
    this.root = root;
    this.cameraSelect = cameraSelect;
    this.micSelect = micSelect;

    cameraSelect.addEventListener('change', () => this._emit('select', { kind: 'video', deviceId: cameraSelect.value }));
    micSelect.addEventListener('change', () => this._emit('select', { kind: 'audio', deviceId: micSelect.value }));
    retry.addEventListener('click', () => {
      root.open = false;
      this._emit('retry', {});
    });
    // Close the picker when clicking elsewhere.
    document.addEventListener('click', (e) => {
      if (root.open && !root.contains(/** @type {Node} */ (e.target))) root.open = false;
    });
  }

  /**
   * Esc closes an open picker first (and does nothing else).
   * @returns {boolean} true if the picker was open and is now closed
   */
  closeOnEscape() {
    if (!this.root.open) return false;
    this.root.open = false;
    $('summary', this.root).focus();
    return true;
  }

  /**
   * List the devices; only kinds we have a track for can be chosen.
   * @param {LocalMedia} media
   */
  async refresh(media) {
    const { audio, video } = await media.listDevices();
    fillSelect(this.cameraSelect, media.videoTrack ? video : [], media.currentDeviceId('video'), 'No camera');
    fillSelect(this.micSelect, media.audioTrack ? audio : [], media.currentDeviceId('audio'), 'No microphone');
  }

  /**
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
