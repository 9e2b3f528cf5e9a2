// Random 1:1 video chat page: wires the protocol client (protocol.js, no DOM) to the local media
// and the UI pieces. Every piece keeps its own state; this file only connects events to them.

import { $ } from './dom.js';
import { ProtocolClient } from './protocol.js';
import { signalingUrl } from './signaling.js';
import { LocalMedia } from './media.js';
import { Metrics } from './metrics.js';
import { StatusLine, OnlineCount } from './status.js';
import { Notices } from './notices.js';
import { ConnectionNotices, CHAT_ERRORS, FRIENDLY_ERRORS } from './connection-notices.js';
import { RemoteView } from './remote-view.js';
import { LocalView } from './local-view.js';
import { DevicePicker } from './devices.js';
import { CameraController } from './camera.js';
import { ChatPanel } from './chat.js';
import { Controls } from './controls.js';
import { ModerationView } from './moderation.js';

/** @typedef {import('./protocol.js').State} State */

const media = new LocalMedia();
const client = new ProtocolClient(signalingUrl('./ws'), { localStream: media.stream });
const metrics = new Metrics();

const status = new StatusLine($('#status'));
const online = new OnlineCount($('#online'));
const notices = new Notices($('#notice'));
const connection = new ConnectionNotices(notices, client);
const remote = new RemoteView({
  root: $('#remote'),
  video: $('#remote-video'),
  overlay: $('#remote-overlay'),
  title: $('#overlay-title'),
  hint: $('#overlay-hint'),
  unmute: $('#unmute'),
}, (now) => metrics.firstFrame(now));
const chat = new ChatPanel({
  log: $('#chat-log'), form: $('#chat-form'), input: $('#chat-input'), send: $('#chat-send'),
}, (text) => client.sendChat(text));
const local = new LocalView({
  root: $('#local'),
  video: $('#local-video'),
  placeholder: $('.local__placeholder-text'),
  muteMic: $('#mute-mic'),
  cameraOff: $('#camera-off'),
}, media);
const picker = new DevicePicker({
  root: $('#devices'), cameraSelect: $('#camera-select'), micSelect: $('#mic-select'), retry: $('#retry-media'),
});
const camera = new CameraController({
  media,
  view: local,
  picker,
  notices,
  // The peer connection does not wait for the camera: tracks are attached with replaceTrack
  // whenever they become available (permission prompts can take a while).
  sendTracks: () => client.setLocalTracks({ audio: media.audioTrack, video: media.videoTrack }),
});
const moderation = new ModerationView(notices, remote, () => camera.acquire());
const buttons = new Controls({ start: $('#start'), next: $('#next'), stop: $('#stop') }, {
  // Clicks and keys are user gestures: the moment to lift autoplay restrictions on the partner's sound.
  onStart: () => { if (client.start()) remote.unlockAudio(); },
  onNext: () => { if (client.next()) remote.unlockAudio(); },
  onStop: () => client.stop(),
  onEscape: () => picker.closeOnEscape(),
});

// ============================================================================================
// What each state looks like

/** @type {Record<string, string>} the chat line when a conversation ends this way */
const CHAT_ENDED = {
  next: 'You skipped to the next person.',
  stop: 'You left the chat.',
  partner_left: 'Stranger left the chat.',
  disconnected: 'Connection lost — this chat has ended.',
};
const LOOKING = ['Looking for someone…', 'This usually takes a few seconds.'];
/** @type {Record<string, string[]>} the overlay while waiting, by what led there */
const WAITING_OVERLAY = {
  partner_left: ['Stranger left', 'Looking for someone new…'],
  disconnected: ['Connection lost', "Reconnecting… you'll be back in the queue."],
};

/**
 * @param {{state: State, previous: State, reason: string}} change
 */
function showState({ state, previous, reason }) {
  const now = performance.now();
  if (reason === 'start') metrics.started(now);
  if (reason === 'paired') metrics.paired(now);
  if (previous === 'paired' && CHAT_ENDED[reason]) chat.add('system', CHAT_ENDED[reason]);

  let text;
  if (reason === 'start' && !client.isOpen) text = 'Connecting to the server…';
  else if (reason === 'disconnected' && state === 'waiting') text = 'Reconnecting…';
  status.set(state, text);
  moderation.stateChanged(state);
  buttons.setState(state);
  chat.setPaired(state === 'paired');
  remote.setPaired(state === 'paired');

  if (state === 'paired') {
    chat.clear();
    chat.add('system', "You're now chatting with a stranger");
    remote.revealWhenFresh();
    remote.play();
  } else if (state === 'waiting') {
    const [title, hint] = WAITING_OVERLAY[reason] || LOOKING;
    remote.cover(title, hint, { spinner: true });
  } else {
    remote.cover('Press Start', 'Meet someone new, one stranger at a time.');
  }
}

// ============================================================================================
// Protocol events → UI

/**
 * @template T
 * @param {string} type
 * @param {(detail: T) => void} handler
 */
function on(type, handler) {
  client.addEventListener(type, (e) => handler(/** @type {CustomEvent<T>} */ (e).detail));
}

on('statechange', showState);
on('welcome', ({ reconnect }) => connection.welcome(reconnect));
on('chat', ({ text }) => chat.add('them', text));
on('online', ({ count }) => online.set(count));
on('error', (error) => {
  if (CHAT_ERRORS.includes(error.code)) chat.add('system', FRIENDLY_ERRORS[error.code]);
  else connection.serverError(error);
});
on('negotiationerror', ({ stage }) => connection.negotiationError(stage));
on('moderation', (message) => moderation.apply(message));
on('remotestream', ({ stream }) => remote.setStream(stream));
on('connectionstate', ({ state }) => connection.mediaState(state));
on('disconnected', () => connection.disconnected());
on('reconnecting', () => connection.reconnecting());

window.addEventListener('pagehide', () => client.close());
// Coming back from the back/forward cache: the old connection is gone for good, start afresh.
window.addEventListener('pageshow', (e) => {
  if (e.persisted) window.location.reload();
});

// ============================================================================================
// Debug / test handle (read-only)

/** @type {any} */ (window).sfu = Object.freeze({
  get pc() { return client.pc; },
  get ws() { return client.ws; },
  get state() { return client.state; },
  get partner() { return client.partner; },
  get id() { return client.id; },
  get online() { return client.online; },
  get negotiated() { return client.negotiated; },
  get pcCount() { return client.pcCount; },
  get metrics() { return metrics.snapshot(); },
  get localStream() { return media.stream; },
});

// ============================================================================================
// Boot

showState({ state: 'idle', previous: 'idle', reason: 'boot' });
chat.add('system', 'Press Start to meet a random stranger. Be kind — Esc skips to the next person.');
local.render();
camera.acquire();
client.connect();
