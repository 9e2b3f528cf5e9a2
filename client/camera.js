// Getting the camera and microphone: the first request, "Try again", device switches, unplugged
// devices, and a notice that explains what is missing and offers a way on.

import { classifyMediaError } from './media.js';

/** @typedef {import('./media.js').LocalMedia} LocalMedia */
/** @typedef {import('./local-view.js').LocalView} LocalView */
/** @typedef {import('./devices.js').DevicePicker} DevicePicker */
/** @typedef {import('./notices.js').Notices} Notices */
/** @typedef {'audio' | 'video'} Kind */

const MEDIA_NOTICE_KINDS = ['camera-denied', 'no-camera', 'no-microphone', 'no-devices', 'camera-busy', 'media-unsupported'];

export class CameraController {
  /**
   * @param {object} parts
   * @param {LocalMedia} parts.media
   * @param {LocalView} parts.view
   * @param {DevicePicker} parts.picker
   * @param {Notices} parts.notices
   * @param {() => Promise<void>} parts.sendTracks  make the connection send media's current tracks
   */
  constructor({ media, view, picker, notices, sendTracks }) {
    this.media = media;
    this.view = view;
    this.picker = picker;
    this.notices = notices;
    this.sendTracks = sendTracks;

    picker.addEventListener('select', (e) => {
      const { kind, deviceId } = /** @type {CustomEvent} */ (e).detail;
      this.switchDevice(kind, deviceId);
    });
    picker.addEventListener('retry', () => this.acquire());
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', () => this.picker.refresh(media));
    }
    media.addEventListener('ended', (e) => {
      const what = /** @type {CustomEvent} */ (e).detail.kind === 'audio' ? 'microphone' : 'camera';
      notices.show('device-lost', `Your ${what} was disconnected. Pick another one in the device menu.`, { tone: 'warn', timeout: 10000 });
      this._settled();
    });
  }

  /**
   * Ask for camera and microphone (or only what `opts` says) and explain what could not be had.
   * @param {{audio?: boolean, video?: boolean}} [opts]
   */
  async acquire(opts) {
    const { media } = this;
    const before = { audio: media.audioTrack, video: media.videoTrack };
    this.view.setPending(true);
    const res = await media.acquire(opts);
    this.view.pending = false;
    await this.sendTracks();
    for (const kind of /** @type {Kind[]} */ (['audio', 'video'])) {
      const old = before[kind];
      if (old && old !== media.track(kind)) old.stop();
    }
    for (const k of MEDIA_NOTICE_KINDS) this.notices.clear(k);
    this.view.render();
    this.picker.refresh(media);
    this._explain(res);
    return res;
  }

  /**
   * @param {Kind} kind
   * @param {string} deviceId
   */
  async switchDevice(kind, deviceId) {
    const { media } = this;
    if (!deviceId || deviceId === media.currentDeviceId(kind)) return;
    const what = kind === 'audio' ? 'microphone' : 'camera';
    let result;
    try {
      result = await media.openDevice(kind, deviceId);
    } catch (err) {
      // Some systems cannot open two cameras at once: release the current one and retry.
      const old = media.track(kind);
      if (classifyMediaError(err) === 'busy' && old) {
        old.stop();
        try {
          result = await media.openDevice(kind, deviceId);
        } catch {
          result = null;
        }
      }
      if (!result) {
        this.notices.show('device-error', `Couldn't switch to that ${what}. It may be in use by another app.`, { tone: 'warn', timeout: 8000 });
        await this._settled();
        return;
      }
    }
    await this.sendTracks();
    if (result.old && result.old !== result.track) result.old.stop();
    this.notices.clear('device-error');
    this.view.render();
    this.picker.refresh(media);
  }

  /** Tracks changed underneath us: send what is there now, redraw, relist devices. */
  async _settled() {
    const done = this.sendTracks();
    this.view.render();
    this.picker.refresh(this.media);
    await done;
  }

  /** @param {{audio: boolean, video: boolean, problem: null | {kind: string}}} res */
  _explain(res) {
    const { notices } = this;
    const clearAll = () => MEDIA_NOTICE_KINDS.forEach((k) => notices.clear(k));
    const retry = { label: 'Try again', primary: true, onClick: () => this.acquire() };
    const audioOnly = { label: 'Use microphone only', onClick: () => this.acquire({ audio: true, video: false }) };
    const viewOnly = (label = 'Continue without camera') => ({ label, onClick: clearAll });
    if (res.audio && res.video) return;
    const kind = res.problem ? res.problem.kind : 'notfound';
    if (res.video && !res.audio) {
      notices.show('no-microphone', 'No microphone available — strangers will see you but not hear you.', {
        tone: 'info', actions: [retry, viewOnly('OK')],
      });
    } else if (res.audio && !res.video) {
      let why = 'No camera found — you are audio-only. Strangers will hear you but not see you.';
      if (kind === 'busy') why = 'Your camera is being used by another app, so you are audio-only for now.';
      else if (kind === 'denied') why = 'Camera access is blocked, so you are audio-only.';
      notices.show('no-camera', why, { tone: 'info', actions: [retry, viewOnly('OK')] });
    } else if (kind === 'denied') {
      notices.show('camera-denied',
        "Camera and microphone access was blocked. You can still watch and chat, or allow access in your browser's address bar and try again.",
        { tone: 'warn', actions: [retry, audioOnly, viewOnly()] });
    } else if (kind === 'busy') {
      notices.show('camera-busy',
        'Your camera or microphone is being used by another app. Close it and try again, or continue view-only.',
        { tone: 'warn', actions: [retry, viewOnly()] });
    } else if (kind === 'unsupported') {
      notices.show('media-unsupported',
        "This browser can't use a camera on this page (it needs HTTPS). You can still watch and chat.",
        { tone: 'warn', actions: [viewOnly('OK')] });
    } else {
      notices.show('no-devices', 'No camera or microphone found. You can still watch and chat.', {
        tone: 'info', actions: [retry, viewOnly('OK')],
      });
    }
  }
}
