// What moderation tells the page (docs/protocol.md, `moderation`): a moderator's warning, your video
// hidden from your partner and why, your partner's video hidden (the "video hidden" cover; Next still
// works), and "turn your camera on" while the server waits for your video before matching you.
// Every text is a catalog key, rendered again when the page's language changes.

import { t } from './i18n.js';

/** @typedef {import('./notices.js').Notices} Notices */
/** @typedef {import('./remote-view.js').RemoteView} RemoteView */

/** What the page said about a missing camera ("you can still watch"): superseded by camera_required. */
const CAMERA_NOTICE_KINDS = ['camera-denied', 'no-camera', 'no-devices', 'camera-busy', 'media-unsupported'];

export class ModerationView {
  /**
   * @param {Notices} notices
   * @param {RemoteView} remote
   * @param {() => void} retryCamera  ask for the camera again
   */
  constructor(notices, remote, retryCamera) {
    this.notices = notices;
    this.remote = remote;
    this.retryCamera = retryCamera;
  }

  /**
   * One `moderation` message.
   * @param {{action: string, reason: string | null}} message
   */
  apply({ action, reason }) {
    const root = this.remote.root;
    const noFace = reason === 'no_face';
    switch (action) {
      case 'warned':
        this.notices.show('warned', () => t('moderation.warned', { reason: reason || '' }), { tone: 'warn', timeout: 15000 });
        break;
      case 'video_hidden':
        this.notices.show('moderation', () => t(noFace ? 'moderation.video_hidden_no_face' : 'moderation.video_hidden'),
          { tone: 'error', code: reason || '' });
        break;
      case 'video_shown':
        this.notices.show('moderation', () => t('moderation.video_shown'), { tone: 'ok', timeout: 4000 });
        break;
      case 'partner_hidden':
        root.dataset.moderation = 'hidden';
        this.remote.cover('moderation.partner_hidden_title',
          noFace ? 'moderation.partner_hidden_no_face' : 'moderation.partner_hidden');
        break;
      case 'partner_shown':
        delete root.dataset.moderation;
        this.remote.revealWhenFresh();
        break;
      case 'camera_required':
        for (const kind of CAMERA_NOTICE_KINDS) this.notices.clear(kind);
        this.notices.show('camera-required', () => t('moderation.camera_required'), {
          tone: 'warn',
          dismissible: false,
          actions: [{ label: () => t('moderation.camera_retry'), primary: true, onClick: () => this.retryCamera() }],
        });
        break;
      default:
        console.debug('Ignoring unknown moderation action', action);
    }
  }

  /**
   * The conversation changed: what was hidden belonged to the previous one.
   * @param {string} state  idle | waiting | paired
   */
  stateChanged(state) {
    delete this.remote.root.dataset.moderation;
    this.notices.clear('moderation');
    if (state !== 'waiting') this.notices.clear('camera-required');
  }
}
