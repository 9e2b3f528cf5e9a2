// Random 1:1 video chat page: wires the protocol client (protocol.js, no DOM) to the local media
// and the UI pieces. Every piece keeps its own state; this file only connects events to them.
// Every text on the page comes from the catalog of the visitor's language (i18n.js, locales/).

import { $ } from './dom.js';
import { i18n, setText, t } from './i18n.js';
import { applyBrand, loadBrand } from './brand.js';
import { LanguageSwitcher } from './language-switcher.js';
import { PreferencesPanel } from './preferences.js';
import { ProtocolClient } from './protocol.js';
import { signalingUrl } from './signaling.js';
import { LocalMedia } from './media.js';
import { Metrics } from './metrics.js';
import { StatusLine, OnlineCount } from './status.js';
import { Notices } from './notices.js';
import { ConnectionNotices, CHAT_ERRORS, errorTextKey } from './connection-notices.js';
import { RemoteView } from './remote-view.js';
import { LocalView } from './local-view.js';
import { DevicePicker } from './devices.js';
import { CameraController } from './camera.js';
import { ChatPanel } from './chat.js';
import { Controls } from './controls.js';
import { RulesDialog } from './rules-dialog.js';
import { ReportDialog } from './report-dialog.js';
import { BannedView } from './banned.js';
import { ModerationView } from './moderation.js';

/** @typedef {import('./protocol.js').State} State */

// The operator's brand and the visitor's language come first: everything below shows text.
const [brand] = await Promise.all([loadBrand(), i18n.load()]);
applyBrand(brand, {
  root: $('#brand'), name: $('#brand-name'), mark: $('.brand__mark'), logo: $('#brand-logo'), links: $('#site-links'),
});
setText($('title'), 'page.title', { name: brand.name });
i18n.apply(document);

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
const prefs = new PreferencesPanel({
  root: $('#prefs'),
  summaryCount: $('#prefs-count'),
  chips: $('#interest-chips'),
  input: $('#interest-input'),
  message: $('#interest-message'),
  strict: $('#strict'),
  language: $('#match-language'),
});
if (window.matchMedia('(min-width: 641px)').matches) $('#prefs').open = true;
client.setPreferences(prefs.value);
prefs.addEventListener('change', () => {
  client.setPreferences(prefs.value);
  if (client.state === 'waiting') remote.cover(...looking(), { spinner: true });
});
new LanguageSwitcher($('#language'));
const commonLabel = $('#common');
// Start waits for the rules to be accepted (once per visit); a Start pressed before goes on after.
let startWhenAccepted = false;
const rules = new RulesDialog({ dialog: $('#rules-dialog'), text: $('#rules-text'), accept: $('#rules-accept') }, (version) => {
  client.acceptRules(version);
  if (startWhenAccepted && client.start()) remote.unlockAudio();
  startWhenAccepted = false;
});
const report = new ReportDialog({
  button: $('#report'), dialog: $('#report-dialog'), form: $('#report-form'), note: $('#report-note'),
  cancel: $('#report-cancel'),
}, (reason, note) => client.report(reason, note));
const moderation = new ModerationView(notices, remote, () => camera.acquire());
const buttons = new Controls({ start: $('#start'), next: $('#next'), stop: $('#stop') }, {
  // Clicks and keys are user gestures: the moment to lift autoplay restrictions on the partner's sound.
  onStart: () => {
    if (!client.rulesAccepted) {
      startWhenAccepted = true;
      rules.open();
      return;
    }
    if (client.start()) remote.unlockAudio();
  },
  onNext: () => { if (client.next()) remote.unlockAudio(); },
  onStop: () => client.stop(),
  onEscape: () => picker.closeOnEscape(),
});
const banned = new BannedView(notices, remote, status, [$('#start'), $('#next'), $('#stop')]);
/** Refusals of a report or of Start before the rules: told in a short notice. */
const MODERATION_ERROR_TEXT = Object.freeze({
  nothing_to_report: 'moderation.error.nothing_to_report',
  report_rate_limited: 'moderation.error.report_rate_limited',
  note_too_long: 'moderation.error.note_too_long',
  cannot_report_self: 'moderation.error.cannot_report_self',
  bad_reason: 'moderation.error.bad_reason',
  report_failed: 'moderation.error.report_failed',
});

// ============================================================================================
// What each state looks like

/** @type {Record<string, string>} the chat line (text key) when a conversation ends this way */
const CHAT_ENDED = {
  next: 'chat.ended_next',
  stop: 'chat.ended_stop',
  partner_left: 'chat.ended_partner_left',
  disconnected: 'chat.ended_disconnected',
};
/** @type {Record<string, string[]>} the overlay while waiting (text keys), by what led there */
const WAITING_OVERLAY = {
  partner_left: ['overlay.partner_left_title', 'overlay.partner_left_hint'],
  disconnected: ['overlay.disconnected_title', 'overlay.disconnected_hint'],
};

/** The overlay while looking: what the search is for. */
function looking() {
  const { interests, strict } = prefs.value;
  if (strict) return ['overlay.looking_title', 'overlay.looking_strict_hint'];
  if (interests.length) return ['overlay.looking_title', 'overlay.looking_interests_hint'];
  return ['overlay.looking_title', 'overlay.looking_hint'];
}

/** "You both like …" while paired with someone who shares interests. */
function showCommon() {
  const common = client.state === 'paired' ? client.common : [];
  if (common.length) setText(commonLabel, 'common.you_both_like', { tags: common });
  commonLabel.hidden = common.length === 0;
}

/**
 * @param {{state: State, previous: State, reason: string}} change
 */
function showState({ state, previous, reason }) {
  const now = performance.now();
  if (reason === 'start') metrics.started(now);
  if (reason === 'paired') metrics.paired(now);
  if (previous === 'paired' && CHAT_ENDED[reason]) chat.add('system', CHAT_ENDED[reason]);

  let text;
  if (reason === 'start' && !client.isOpen) text = 'status.connecting';
  else if (reason === 'disconnected' && state === 'waiting') text = 'status.reconnecting';
  status.set(state, text);
  moderation.stateChanged(state);
  buttons.setState(state);
  report.setState(state, previous);
  chat.setPaired(state === 'paired');
  remote.setPaired(state === 'paired');
  showCommon();

  if (state === 'paired') {
    chat.clear();
    chat.add('system', 'chat.paired');
    if (client.common.length) chat.add('system', 'common.you_both_like', { tags: client.common });
    remote.revealWhenFresh();
    remote.play();
  } else if (state === 'waiting') {
    const [title, hint] = WAITING_OVERLAY[reason] || looking();
    remote.cover(title, hint, { spinner: true });
  } else {
    remote.cover('overlay.idle_title', 'overlay.idle_hint');
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
  const key = errorTextKey(error.code);
  if (CHAT_ERRORS.includes(error.code) && key) chat.add('system', key);
  else if (error.code in MODERATION_ERROR_TEXT) {
    const text = MODERATION_ERROR_TEXT[error.code];
    notices.show('report', () => t(text), { tone: 'warn', code: error.code, timeout: 6000 });
  } else if (error.code === 'rules_not_accepted') {
    startWhenAccepted = true;
    rules.open();
  } else if (error.code !== 'banned' && error.code !== 'rules_changed') connection.serverError(error);
});
on('rules', (detail) => rules.set(detail));
on('reported', () => {
  notices.show('report', () => t('moderation.reported'), { tone: 'ok', timeout: 5000 });
  chat.add('system', 'moderation.reported.chat');
});
on('banned', (ban) => {
  rules.close();
  report.disable();
  banned.show(ban);
});
on('negotiationerror', ({ stage }) => connection.negotiationError(stage));
on('moderation', (message) => moderation.apply(message));
on('remotestream', ({ stream }) => remote.setStream(stream));
on('connectionstate', ({ state }) => {
  if (!client.banned || state === 'closed') connection.mediaState(state); // nothing to say about media once banned
});
on('disconnected', () => connection.disconnected());
on('reconnecting', () => connection.reconnecting());

// Another language: every text that names its key is redrawn; lists and names are rebuilt.
i18n.addEventListener('change', () => {
  i18n.apply(document);
  notices.refresh();
  prefs.render();
  picker.refresh(media);
});

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
  get rulesAccepted() { return client.rulesAccepted; },
  get banned() { return client.banned; },
  get localStream() { return media.stream; },
  get common() { return [...client.common]; },
  get preferences() { return client.preferences; },
  get lang() { return i18n.lang; },
});

// ============================================================================================
// Boot

showState({ state: 'idle', previous: 'idle', reason: 'boot' });
chat.add('system', 'chat.welcome');
local.render();
camera.acquire();
client.connect();
