// Random 1:1 video chat client.
//
// One WebSocket (/ws) and ONE RTCPeerConnection per visit. The connection is negotiated once
// (non-trickle offer → answer); Start / Next / Stop are plain signaling messages and the server
// switches whose media it forwards on the connection we already have. Only when the WebSocket
// drops (server state lost) is a new peer connection created after reconnecting.

import { Signaling, signalingUrl } from './signaling.js';
import { LocalMedia, classifyMediaError } from './media.js';
import { $, StatusLine, Notices, ChatLog, fillSelect, formatSeconds } from './ui.js';

const dom = {
  start: $('#start'),
  next: $('#next'),
  stop: $('#stop'),
  remote: $('#remote'),
  remoteVideo: $('#remote-video'),
  overlayTitle: $('#overlay-title'),
  overlayHint: $('#overlay-hint'),
  overlay: $('#remote-overlay'),
  unmute: $('#unmute'),
  local: $('#local'),
  localVideo: $('#local-video'),
  localPlaceholderText: $('.local__placeholder-text'),
  muteMic: $('#mute-mic'),
  cameraOff: $('#camera-off'),
  devices: $('#devices'),
  cameraSelect: $('#camera-select'),
  micSelect: $('#mic-select'),
  retryMedia: $('#retry-media'),
  online: $('#online'),
  chatForm: $('#chat-form'),
  chatInput: $('#chat-input'),
  chatSend: $('#chat-send'),
};

const status = new StatusLine($('#status'));
const notices = new Notices($('#notice'));
const chat = new ChatLog($('#chat-log'));
const media = new LocalMedia();
const signaling = new Signaling(signalingUrl('./ws'));

const app = {
  state: 'idle',          // what #status shows: idle | waiting | paired
  want: false,            // the user wants to be matched (Start/Next pressed, Stop not)
  id: null,               // our opaque id (from welcome)
  partner: null,          // current partner's opaque id
  online: null,
  version: null,
  everWelcomed: false,
  stopsInFlight: 0,       // `stop` messages whose `idle` reply has not arrived yet
  fatalError: null,       // last error that makes the server close the socket
  pcCount: 0,             // peer connections created during this visit (1 unless the socket dropped)
};

/** Per-WebSocket state; replaced only after a reconnect. */
let session = null;

const metrics = {
  startClickedAt: null,   // performance.now() of the last Start click
  pairedAt: null,         // first `paired` after that click
  firstFrameAt: null,     // first fresh partner frame after that click
  startToFirstFrameMs: null,
  lastPairedAt: null,
  lastFirstFrameAt: null,
  pairings: 0,
};

const FATAL_CODES = new Set(['server_full', 'shutting_down', 'bad_sdp', 'internal_error']);
const FRIENDLY_ERRORS = {
  server_full: 'The server is full, try again in a minute.',
  shutting_down: 'The server is restarting.',
  bad_sdp: "Your browser and the server couldn't agree on how to send video.",
  internal_error: 'Something went wrong on the server.',
  rate_limited: "Whoa, that's fast! Slow down for a moment.",
  chat_too_long: 'That message is too long (1000 characters max).',
  chat_empty: "Empty messages aren't sent.",
  not_paired: "Your message wasn't delivered: you're not connected to anyone right now.",
};
const CHAT_ERRORS = new Set(['chat_too_long', 'chat_empty', 'not_paired']);

// ============================================================================================
// State and the remote video overlay

function setState(state, text) {
  app.state = state;
  status.set(state, text);
  document.body.dataset.state = state;
  dom.start.disabled = state !== 'idle';
  dom.next.disabled = state === 'idle';
  dom.stop.disabled = state === 'idle';
  updateChatControls();
  updateUnmuteButton();
}

let revealToken = 0;

/** Cover the partner's video so a stale frame from an old partner is never visible. */
function hideRemote(title, hint = '', { spinner = false } = {}) {
  revealToken += 1;
  dom.remote.dataset.visible = 'false';
  dom.overlay.dataset.spinner = String(spinner);
  dom.overlayTitle.textContent = title;
  dom.overlayHint.textContent = hint;
}

/** After `paired`: uncover the video once a frame from the new partner has been rendered. */
function revealRemoteWhenFresh() {
  const token = ++revealToken;
  const since = performance.now();
  dom.remote.dataset.visible = 'false';
  dom.overlay.dataset.spinner = 'true';
  dom.overlayTitle.textContent = 'Connecting video…';
  dom.overlayHint.textContent = '';

  const firstFrame = () => {
    if (metrics.firstFrameAt === null && metrics.startClickedAt !== null) {
      metrics.firstFrameAt = performance.now();
      metrics.startToFirstFrameMs = Math.round(metrics.firstFrameAt - metrics.startClickedAt);
      console.info(`Start → first partner frame: ${metrics.startToFirstFrameMs} ms`);
    }
    metrics.lastFirstFrameAt = performance.now();
  };
  const reveal = () => {
    if (token !== revealToken) return;
    dom.remote.dataset.visible = 'true';
  };

  const v = dom.remoteVideo;
  if (typeof v.requestVideoFrameCallback === 'function') {
    let fresh = 0;
    let seen = 0;
    const onFrame = (_now, meta) => {
      if (token !== revealToken) return;
      seen += 1;
      // receiveTime shares performance.now()'s time base: skip frames that were in flight.
      const isFresh = meta && typeof meta.receiveTime === 'number' ? meta.receiveTime >= since : seen >= 2;
      if (isFresh) {
        fresh += 1;
        if (fresh === 1) firstFrame();
      }
      if (fresh >= 2 || seen >= 6) reveal();
      else v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  } else {
    setTimeout(() => {
      if (token === revealToken) firstFrame();
      reveal();
    }, 700);
  }
  // The partner may send no video at all (audio-only): show whatever the server sends.
  setTimeout(reveal, 5000);
}

// ============================================================================================
// Remote playback (autoplay policies)

let autoplayMuted = false; // the browser refused unmuted playback before a user gesture

function updateUnmuteButton() {
  dom.unmute.hidden = !(autoplayMuted && app.state === 'paired');
}

function playRemote() {
  const v = dom.remoteVideo;
  if (!v.srcObject) return;
  const p = v.play();
  if (p && typeof p.catch === 'function') {
    p.catch((err) => {
      if (err && err.name === 'NotAllowedError' && !v.muted) {
        // Sound needs a user gesture: play muted for now and offer a button while paired.
        v.muted = true;
        autoplayMuted = true;
        updateUnmuteButton();
        v.play().catch(() => {});
      }
    });
  }
}

/** Called from click/key handlers (user gestures) to lift autoplay restrictions. */
function unlockAudio() {
  const v = dom.remoteVideo;
  if (autoplayMuted) {
    v.muted = false;
    autoplayMuted = false;
    updateUnmuteButton();
  }
  playRemote();
}

dom.unmute.addEventListener('click', unlockAudio);

// ============================================================================================
// User actions

function sendIntent(type) {
  // Before the offer/answer exchange, `flushIntent` sends `start` once negotiated.
  if (session && session.negotiated) signaling.send({ type });
}

function flushIntent() {
  if (app.want && session && session.negotiated) signaling.send({ type: 'start' });
}

// If the server refused a start/next/stop (rate limit), what we show may not be what the server
// has: once things calm down, restate the user's intent. `next` is safe in every state (idle: acts
// as start; waiting: no-op; paired: the user asked to move on anyway) and `stop` always is.
let resyncTimer = null;
function scheduleResync() {
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(() => {
    if (!session || !session.negotiated) return;
    if (app.want) {
      if (app.state !== 'paired') signaling.send({ type: 'next' });
    } else if (signaling.send({ type: 'stop' })) {
      app.stopsInFlight += 1;
    }
  }, 1500);
}

function onStart() {
  if (app.state !== 'idle') return;
  app.want = true;
  metrics.startClickedAt = performance.now();
  metrics.pairedAt = null;
  metrics.firstFrameAt = null;
  metrics.startToFirstFrameMs = null;
  unlockAudio();
  setState('waiting', signaling.isOpen ? undefined : 'Connecting to the server…');
  hideRemote('Looking for someone…', 'This usually takes a few seconds.', { spinner: true });
  sendIntent('start');
}

let lastNextAt = 0;

function onNext() {
  if (app.state === 'idle') return;
  // Key repeat / double clicks: one Next per 300 ms is plenty (and keeps us under rate limits).
  const now = performance.now();
  if (now - lastNextAt < 300) return;
  lastNextAt = now;
  app.want = true;
  if (app.state === 'paired') chat.add('system', 'You skipped to the next person.');
  app.partner = null;
  unlockAudio();
  setState('waiting');
  hideRemote('Looking for someone…', 'This usually takes a few seconds.', { spinner: true });
  sendIntent('next');
}

function onStop() {
  if (app.state === 'idle' && !app.want) return;
  if (app.state === 'paired') chat.add('system', 'You left the chat.');
  app.want = false;
  app.partner = null;
  setState('idle');
  hideRemote('Press Start', 'Meet someone new, one stranger at a time.');
  if (signaling.send({ type: 'stop' })) app.stopsInFlight += 1;
}

dom.start.addEventListener('click', onStart);
dom.next.addEventListener('click', onNext);
dom.stop.addEventListener('click', onStop);

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || e.repeat || e.isComposing) return;
  if (dom.devices.open) {
    dom.devices.open = false;
    dom.devices.querySelector('summary').focus();
    e.preventDefault();
    return;
  }
  // Esc = Next, from anywhere (including the chat input).
  if (app.state === 'idle') return;
  e.preventDefault();
  onNext();
});

// --- chat ------------------------------------------------------------------------------------

function updateChatControls() {
  const paired = app.state === 'paired';
  dom.chatSend.disabled = !paired || dom.chatInput.value.trim() === '';
  dom.chatInput.placeholder = paired ? 'Say hi…' : 'Chat opens when connected';
}

function sendChat() {
  const text = dom.chatInput.value.trim();
  if (!text) return;
  if (app.state !== 'paired') {
    chat.add('system', "You're not connected to anyone yet — press Start.");
    return;
  }
  if (!signaling.send({ type: 'chat', text })) {
    chat.add('system', 'Not sent: the connection was lost.');
    return;
  }
  chat.add('me', text);
  dom.chatInput.value = '';
  updateChatControls();
}

dom.chatForm.addEventListener('submit', (e) => {
  e.preventDefault();
  sendChat();
});
dom.chatInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendChat();
  }
});
dom.chatInput.addEventListener('input', updateChatControls);

// ============================================================================================
// Local media

function updateMediaControls() {
  const a = media.audioTrack;
  const v = media.videoTrack;
  dom.muteMic.disabled = !a;
  dom.cameraOff.disabled = !v;
  const micOff = !a || !media.audioEnabled;
  const camOff = !v || !media.videoEnabled;
  dom.muteMic.setAttribute('aria-pressed', String(!!a && !media.audioEnabled));
  dom.cameraOff.setAttribute('aria-pressed', String(!!v && !media.videoEnabled));
  dom.muteMic.dataset.off = String(micOff);
  dom.cameraOff.dataset.off = String(camOff);
  dom.muteMic.title = !a ? 'No microphone' : (media.audioEnabled ? 'Mute microphone' : 'Unmute microphone');
  dom.cameraOff.title = !v ? 'No camera' : (media.videoEnabled ? 'Turn camera off' : 'Turn camera on');

  updateLocalPreview();
  let cam = 'on';
  if (!v) cam = mediaPending ? 'pending' : 'none';
  else if (!media.videoEnabled) cam = 'off';
  dom.local.dataset.camera = cam;
  dom.localPlaceholderText.textContent = {
    pending: 'Starting camera…', none: 'No camera', off: 'Camera off', on: '',
  }[cam];
}

/**
 * The preview shows only the camera track. An element whose stream has no video would never
 * reach "loaded" and would hold back the page's load event, so it gets no stream at all then.
 */
function updateLocalPreview() {
  const v = media.videoTrack;
  const el = dom.localVideo;
  const shown = el.srcObject ? el.srcObject.getVideoTracks()[0] : null;
  if (shown === v) return;
  el.srcObject = v ? new MediaStream([v]) : null;
  if (v) el.play().catch(() => {});
}

dom.muteMic.addEventListener('click', () => {
  media.setEnabled('audio', !media.audioEnabled);
  updateMediaControls();
});
dom.cameraOff.addEventListener('click', () => {
  media.setEnabled('video', !media.videoEnabled);
  updateMediaControls();
});

/** Make the peer connection send the current local tracks (no renegotiation). */
async function syncSenders() {
  const s = session;
  if (!s || !s.pc) return;
  for (const [kind, tx] of [['audio', s.audioTx], ['video', s.videoTx]]) {
    const track = media.track(kind);
    if (!tx || tx.sender.track === track) continue;
    try {
      await tx.sender.replaceTrack(track);
    } catch (err) {
      console.warn(`replaceTrack(${kind}) failed`, err);
    }
  }
}

async function refreshDevices() {
  const { audio, video } = await media.listDevices();
  fillSelect(dom.cameraSelect, media.videoTrack ? video : [], media.currentDeviceId('video'), 'No camera');
  fillSelect(dom.micSelect, media.audioTrack ? audio : [], media.currentDeviceId('audio'), 'No microphone');
}

async function switchDevice(kind, deviceId) {
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
      } catch (err2) {
        err = err2;
      }
    }
    if (!result) {
      notices.show('device-error', `Couldn't switch to that ${what}. It may be in use by another app.`, { tone: 'warn', timeout: 8000 });
      await syncSenders();
      updateMediaControls();
      refreshDevices();
      return;
    }
  }
  await syncSenders();
  if (result.old && result.old !== result.track) result.old.stop();
  notices.clear('device-error');
  updateMediaControls();
  refreshDevices();
}

dom.cameraSelect.addEventListener('change', () => switchDevice('video', dom.cameraSelect.value));
dom.micSelect.addEventListener('change', () => switchDevice('audio', dom.micSelect.value));
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', refreshDevices);
}

media.addEventListener('ended', (e) => {
  const what = e.detail.kind === 'audio' ? 'microphone' : 'camera';
  notices.show('device-lost', `Your ${what} was disconnected. Pick another one in the device menu.`, { tone: 'warn', timeout: 10000 });
  syncSenders();
  updateMediaControls();
  refreshDevices();
});

let mediaPending = true;
const MEDIA_NOTICE_KINDS = ['camera-denied', 'no-camera', 'no-microphone', 'no-devices', 'camera-busy', 'media-unsupported'];

async function acquireMedia(opts) {
  const before = { audio: media.audioTrack, video: media.videoTrack };
  mediaPending = true;
  updateMediaControls();
  const res = await media.acquire(opts);
  mediaPending = false;
  await syncSenders();
  for (const kind of ['audio', 'video']) {
    if (before[kind] && before[kind] !== media.track(kind)) before[kind].stop();
  }
  for (const k of MEDIA_NOTICE_KINDS) notices.clear(k);
  updateMediaControls();
  refreshDevices();
  explainMediaResult(res);
  return res;
}

function explainMediaResult(res) {
  const retry = { label: 'Try again', primary: true, onClick: () => acquireMedia() };
  const audioOnly = { label: 'Use microphone only', onClick: () => acquireMedia({ audio: true, video: false }) };
  const viewOnly = (label = 'Continue without camera') => ({
    label,
    onClick: () => MEDIA_NOTICE_KINDS.forEach((k) => notices.clear(k)),
  });
  if (res.audio && res.video) return;
  const kind = res.problem ? res.problem.kind : 'notfound';
  if (res.video && !res.audio) {
    notices.show('no-microphone', 'No microphone available — strangers will see you but not hear you.', {
      tone: 'info', actions: [retry, viewOnly('OK')],
    });
  } else if (res.audio && !res.video) {
    const why = kind === 'busy'
      ? 'Your camera is being used by another app, so you are audio-only for now.'
      : (kind === 'denied'
        ? 'Camera access is blocked, so you are audio-only.'
        : 'No camera found — you are audio-only. Strangers will hear you but not see you.');
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

// Close the device picker when clicking elsewhere.
document.addEventListener('click', (e) => {
  if (dom.devices.open && !dom.devices.contains(e.target)) dom.devices.open = false;
});

dom.retryMedia.addEventListener('click', () => {
  dom.devices.open = false;
  acquireMedia();
});

// ============================================================================================
// Peer connection (one per WebSocket session)

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onChange = () => { if (pc.iceGatheringState === 'complete') done(); };
    const onCandidate = (e) => { if (!e.candidate) done(); };
    // Slow/unreachable STUN servers: send what we have rather than wait forever.
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', onChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

function sanitizeIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((s) => s && (typeof s.urls === 'string' || Array.isArray(s.urls)));
}

async function startSession(iceServers) {
  const s = { pc: null, audioTx: null, videoTx: null, negotiated: false, closed: false, remoteTracks: [] };
  session = s;
  let pc;
  try {
    pc = new RTCPeerConnection({ iceServers: sanitizeIceServers(iceServers) });
  } catch (err) {
    console.warn('Bad iceServers from the server, continuing without them', err);
    pc = new RTCPeerConnection();
  }
  s.pc = pc;
  app.pcCount += 1;

  // Always one audio and one video m-line, sendrecv even without a device, so that view-only works
  // and a camera granted later can be attached with replaceTrack.
  s.audioTx = pc.addTransceiver(media.audioTrack || 'audio', { direction: 'sendrecv', streams: [media.stream] });
  s.videoTx = pc.addTransceiver(media.videoTrack || 'video', { direction: 'sendrecv', streams: [media.stream] });

  pc.addEventListener('track', (ev) => {
    if (s.closed) return;
    if (!s.remoteTracks.includes(ev.track)) s.remoteTracks.push(ev.track);
    dom.remoteVideo.srcObject = new MediaStream(s.remoteTracks);
    playRemote();
  });

  let unstableTimer = null;
  pc.addEventListener('connectionstatechange', () => {
    if (s.closed) return;
    const st = pc.connectionState;
    if (st === 'connected') {
      clearTimeout(unstableTimer);
      notices.clear('media-unstable');
    } else if (st === 'disconnected') {
      clearTimeout(unstableTimer);
      unstableTimer = setTimeout(() => {
        if (!s.closed && pc.connectionState === 'disconnected') {
          notices.show('media-unstable', 'The video connection is unstable… trying to recover.', { tone: 'info', dismissible: false });
        }
      }, 2500);
    } else if (st === 'failed') {
      clearTimeout(unstableTimer);
      notices.clear('media-unstable');
      notices.show('media-failed', 'The video connection failed. Reconnecting…', { tone: 'warn', timeout: 8000 });
      // The server's state for this connection is useless now: start over with a fresh socket.
      signaling.drop();
    }
  });

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc, 6000);
  } catch (err) {
    console.error('Could not create an offer', err);
    notices.show('server-error', "Your browser couldn't set up a video connection. Try reloading the page.", { tone: 'error' });
    return;
  }
  if (s.closed) return;
  signaling.send({ type: 'offer', sdp: pc.localDescription.sdp });
}

async function applyAnswer(sdp) {
  const s = session;
  if (!s || !s.pc || s.negotiated || typeof sdp !== 'string') return;
  try {
    await s.pc.setRemoteDescription({ type: 'answer', sdp });
  } catch (err) {
    console.error('Bad answer from the server', err);
    notices.show('server-error', "The server's video setup didn't work with this browser.", { tone: 'error' });
    return;
  }
  if (s.closed) return;
  s.negotiated = true;
  flushIntent();
}

function teardownSession() {
  const s = session;
  session = null;
  if (!s) return;
  s.closed = true;
  if (s.pc) {
    try { s.pc.close(); } catch { /* ignore */ }
  }
  dom.remoteVideo.srcObject = null;
}

// ============================================================================================
// Signaling

function handleMessage(msg) {
  switch (msg.type) {
    case 'welcome': {
      if (session) return; // already set up on this socket
      app.id = typeof msg.id === 'string' ? msg.id : null;
      app.version = msg.version || null;
      const wasReconnect = app.everWelcomed;
      app.everWelcomed = true;
      app.fatalError = null;
      app.stopsInFlight = 0;
      signaling.markHealthy();
      stopCountdown();
      for (const k of ['unreachable', 'disconnected', 'server-error', 'media-failed']) notices.clear(k);
      if (wasReconnect) notices.show('reconnected', "You're back online.", { tone: 'ok', timeout: 3000 });
      if (app.want) {
        setState('waiting');
        hideRemote('Looking for someone…', 'This usually takes a few seconds.', { spinner: true });
      }
      startSession(msg.iceServers);
      break;
    }
    case 'answer':
      applyAnswer(msg.sdp);
      break;
    case 'waiting':
      if (!app.want) return; // stale: a `stop` is on its way
      app.partner = null;
      if (app.state !== 'waiting') {
        setState('waiting');
        hideRemote('Looking for someone…', 'This usually takes a few seconds.', { spinner: true });
      }
      break;
    case 'paired':
      if (!app.want) return;
      app.partner = typeof msg.partner === 'string' ? msg.partner : '';
      metrics.pairings += 1;
      metrics.lastPairedAt = performance.now();
      if (metrics.pairedAt === null && metrics.startClickedAt !== null) metrics.pairedAt = metrics.lastPairedAt;
      setState('paired');
      chat.clear();
      chat.add('system', "You're now chatting with a stranger");
      revealRemoteWhenFresh();
      playRemote();
      break;
    case 'partner_left':
      if (app.state === 'paired') chat.add('system', 'Stranger left the chat.');
      app.partner = null;
      if (app.want) {
        setState('waiting');
        hideRemote('Stranger left', 'Looking for someone new…', { spinner: true });
      }
      break;
    case 'idle':
      if (app.stopsInFlight > 0) {
        app.stopsInFlight -= 1;
        if (app.want) return; // the user pressed Start again after Stop
      } else {
        app.want = false;
      }
      app.partner = null;
      if (app.state !== 'idle') {
        setState('idle');
        hideRemote('Press Start', 'Meet someone new, one stranger at a time.');
      }
      break;
    case 'chat':
      if (typeof msg.text === 'string' && app.state === 'paired') chat.add('them', msg.text);
      break;
    case 'online':
      if (typeof msg.count === 'number' && Number.isFinite(msg.count)) {
        app.online = msg.count;
        dom.online.dataset.count = String(msg.count);
        dom.online.textContent = `${msg.count.toLocaleString()} online`;
      }
      break;
    case 'error':
      handleServerError(String(msg.code || ''), String(msg.message || ''));
      break;
    default:
      console.debug('Ignoring unknown message', msg.type);
  }
}

function handleServerError(code, message) {
  console.warn(`Server error ${code}: ${message}`);
  if (CHAT_ERRORS.has(code)) {
    chat.add('system', FRIENDLY_ERRORS[code]);
    return;
  }
  if (FATAL_CODES.has(code)) {
    app.fatalError = { code, message };
    if (code === 'server_full') signaling.delayNextRetry(30000);
    notices.show('server-error', FRIENDLY_ERRORS[code], { tone: 'error', code });
    return;
  }
  if (code === 'rate_limited') {
    notices.show('server-error', FRIENDLY_ERRORS[code], { tone: 'warn', code, timeout: 5000 });
    scheduleResync();
    return;
  }
  // Anything else is a client/server mismatch; tell the user briefly, details are in the console.
  notices.show('server-error', `The server refused a request (${code || 'unknown error'}).`, { tone: 'warn', code, timeout: 6000 });
}

// --- connection notices with a retry countdown ------------------------------------------------

let countdownTimer = null;

function stopCountdown() {
  clearInterval(countdownTimer);
  countdownTimer = null;
}

function connectionNotice() {
  if (app.fatalError) {
    return { kind: 'server-error', base: FRIENDLY_ERRORS[app.fatalError.code] || 'The server closed the connection.', code: app.fatalError.code };
  }
  if (app.everWelcomed) return { kind: 'disconnected', base: 'Connection to the server was lost.', code: '' };
  return { kind: 'unreachable', base: "Can't reach the server. Check your internet connection.", code: '' };
}

function showRetryNotice() {
  const { kind, base, code } = connectionNotice();
  const text = () => {
    const left = signaling.retryAt - Date.now();
    return left > 0 ? `${base} Retrying in ${formatSeconds(left)}…` : `${base} Reconnecting…`;
  };
  for (const k of ['unreachable', 'disconnected', 'server-error']) if (k !== kind) notices.clear(k);
  notices.show(kind, text(), {
    tone: kind === 'unreachable' || kind === 'server-error' ? 'error' : 'warn',
    code,
    dismissible: false,
    actions: [{ label: 'Retry now', primary: true, onClick: () => signaling.retryNow() }],
  });
  stopCountdown();
  countdownTimer = setInterval(() => notices.updateText(kind, text()), 500);
}

signaling.addEventListener('message', (e) => handleMessage(e.detail.msg));

signaling.addEventListener('close', () => {
  if (app.state === 'paired') chat.add('system', 'Connection lost — this chat has ended.');
  teardownSession();
  app.stopsInFlight = 0;
  app.partner = null;
  app.online = null;
  dom.online.dataset.count = '';
  dom.online.textContent = 'Offline';
  if (app.want) {
    setState('waiting', 'Reconnecting…');
    hideRemote('Connection lost', "Reconnecting… you'll be back in the queue.", { spinner: true });
  } else {
    setState('idle');
    hideRemote('Press Start', 'Meet someone new, one stranger at a time.');
  }
  showRetryNotice();
});

signaling.addEventListener('retry', () => {
  const { kind } = connectionNotice();
  if (notices.has(kind)) notices.updateText(kind, `${connectionNotice().base} Reconnecting…`);
});

window.addEventListener('pagehide', () => signaling.close());
// Coming back from the back/forward cache: the old connection is gone for good, start afresh.
window.addEventListener('pageshow', (e) => {
  if (e.persisted) window.location.reload();
});

// ============================================================================================
// Debug / test handle (read-only)

window.sfu = Object.freeze({
  get pc() { return session ? session.pc : null; },
  get ws() { return signaling.ws; },
  get state() { return app.state; },
  get partner() { return app.partner; },
  get id() { return app.id; },
  get online() { return app.online; },
  get negotiated() { return !!(session && session.negotiated); },
  get pcCount() { return app.pcCount; },
  get metrics() { return { ...metrics }; },
  get localStream() { return media.stream; },
});

// ============================================================================================
// Boot

setState('idle');
hideRemote('Press Start', 'Meet someone new, one stranger at a time.');
chat.add('system', 'Press Start to meet a random stranger. Be kind — Esc skips to the next person.');
updateMediaControls();
// The peer connection does not wait for the camera: tracks are attached with replaceTrack
// whenever they become available (permission prompts can take a while).
acquireMedia();
signaling.connect();
