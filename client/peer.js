// The one RTCPeerConnection of a signaling session: negotiation, local tracks, the remote stream.
//
// No DOM access. Created by the protocol client once the server has greeted us; closed (and never
// reused) when the WebSocket drops. Local tracks are attached with `replaceTrack`, so a camera that
// arrives late or a device switch never renegotiates.
//
// Events (CustomEvent, payload in `detail`):
//   'remotestream'     {stream}   the partner's media as one MediaStream (null once closed)
//   'connectionstate'  {state}    RTCPeerConnection.connectionState ('closed' after close())

/** @typedef {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null}} LocalTracks */

/** How long to wait for ICE gathering before sending the offer with what we have. */
const ICE_GATHERING_TIMEOUT_MS = 6000;

/**
 * Resolve when ICE gathering completes, or after `timeoutMs` (slow or unreachable STUN servers).
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @returns {Promise<void>}
 */
export function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onChange = () => { if (pc.iceGatheringState === 'complete') done(); };
    /** @param {RTCPeerConnectionIceEvent} e */
    const onCandidate = (e) => { if (!e.candidate) done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', onChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

/**
 * Keep only entries an RTCPeerConnection accepts (the list comes from the server).
 * @param {unknown} list
 * @returns {RTCIceServer[]}
 */
export function sanitizeIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((s) => s && (typeof s.urls === 'string' || Array.isArray(s.urls)));
}

export class PeerSession extends EventTarget {
  /**
   * @param {object} opts
   * @param {unknown} opts.iceServers  as received in `welcome`
   * @param {LocalTracks} opts.tracks  what to send from the start (either may be null)
   * @param {MediaStream} opts.stream  the local stream the sent tracks belong to (msid)
   */
  constructor({ iceServers, tracks, stream }) {
    super();
    /** @type {boolean} the server's answer has been applied */
    this.negotiated = false;
    /** @type {boolean} */
    this.closed = false;
    /** @type {MediaStreamTrack[]} */
    this.remoteTracks = [];

    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: sanitizeIceServers(iceServers) });
    } catch (err) {
      console.warn('Bad iceServers from the server, continuing without them', err);
      pc = new RTCPeerConnection();
    }
    /** @type {RTCPeerConnection} */
    this.pc = pc;

    // Always one audio and one video m-line, sendrecv even without a device, so that view-only works
    // and a camera granted later can be attached with replaceTrack.
    /** @type {Record<'audio' | 'video', RTCRtpTransceiver>} */
    this.transceivers = {
      audio: pc.addTransceiver(tracks.audio || 'audio', { direction: 'sendrecv', streams: [stream] }),
      video: pc.addTransceiver(tracks.video || 'video', { direction: 'sendrecv', streams: [stream] }),
    };

    pc.addEventListener('track', (ev) => {
      if (this.closed) return;
      if (!this.remoteTracks.includes(ev.track)) this.remoteTracks.push(ev.track);
      this._emit('remotestream', { stream: new MediaStream(this.remoteTracks) });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (this.closed) return;
      this._emit('connectionstate', { state: pc.connectionState });
    });
  }

  /**
   * A complete (non-trickle) offer: ICE gathering finished or timed out.
   * @returns {Promise<string | null>} the SDP, or null if the session was closed meanwhile
   */
  async createOffer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await waitForIceGathering(this.pc, ICE_GATHERING_TIMEOUT_MS);
    if (this.closed || !this.pc.localDescription) return null;
    return this.pc.localDescription.sdp;
  }

  /**
   * Apply the server's answer. Rejects if the browser refuses it.
   * @param {string} sdp
   * @returns {Promise<boolean>} true once negotiated (false if closed meanwhile or already done)
   */
  async applyAnswer(sdp) {
    if (this.negotiated || this.closed) return false;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    if (this.closed) return false;
    this.negotiated = true;
    return true;
  }

  /**
   * Send `track` (or nothing) for `kind`, without renegotiation.
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async setTrack(kind, track) {
    const tx = this.transceivers[kind];
    if (this.closed || !tx || tx.sender.track === track) return;
    try {
      await tx.sender.replaceTrack(track);
    } catch (err) {
      console.warn(`replaceTrack(${kind}) failed`, err);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try { this.pc.close(); } catch { /* ignore */ }
    this._emit('connectionstate', { state: 'closed' });
    this._emit('remotestream', { stream: null });
  }

  /**
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
