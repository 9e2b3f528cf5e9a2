// What automatic moderation tells the page (docs/protocol.md, `moderation`): your video hidden from
// your partner and why, your partner's video hidden (the "video hidden" cover; Next still works), and
// "turn your camera on" while the server waits for your video before matching you.

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
    switch (action) {
      case 'video_hidden':
        this.notices.show('moderation', t(reason === 'no_face' ? 'moderation.videoHiddenNoFace' : 'moderation.videoHidden'),
          { tone: 'error', code: reason || '' });
        break;
      case 'video_shown':
        this.notices.show('moderation', t('moderation.videoShown'), { tone: 'ok', timeout: 4000 });
        break;
      case 'partner_hidden':
        root.dataset.moderation = 'hidden';
        this.remote.cover(t('moderation.partnerHiddenTitle'),
          t(reason === 'no_face' ? 'moderation.partnerHiddenNoFace' : 'moderation.partnerHidden'));
        break;
      case 'partner_shown':
        delete root.dataset.moderation;
        this.remote.revealWhenFresh();
        break;
      case 'camera_required':
        for (const kind of CAMERA_NOTICE_KINDS) this.notices.clear(kind);
        this.notices.show('camera-required', t('moderation.cameraRequired'), {
          tone: 'warn',
          dismissible: false,
          actions: [{ label: t('moderation.cameraRetry'), primary: true, onClick: () => this.retryCamera() }],
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
