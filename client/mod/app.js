// Moderator console: sign in, review reports and automatic detections, act, lift bans, read the audit log.
// Every piece of text from the server is shown with textContent, never as HTML.

import { ApiError, ModApi, Unauthorized } from './api.js';

const api = new ModApi();
const $ = (selector) => document.querySelector(selector);

const DURATIONS = [
  [3600, '1 hour'],
  [86400, '24 hours'],
  [604800, '7 days'],
  [2592000, '30 days'],
  [31536000, '1 year'],
];
const REASONS = { nudity: 'Nudity', harassment: 'Harassment', minor: 'Minor', spam: 'Spam', other: 'Other' };
const STATUS_TEXT = { open: 'Open', dismissed: 'Dismissed', warned: 'Warned', banned: 'Banned' };

const state = { tab: 'queue', reportsBefore: null, auditBefore: null };

function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) if (child) node.append(child);
  return node;
}

function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

const short = (id) => (id ? String(id).slice(0, 8) : '—');

function toast(text, kind = 'ok') {
  const box = $('#toast');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

// Runs an API call; signs out on 401, shows other errors as a toast. Returns undefined on failure.
async function run(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Unauthorized) {
      showSignIn('Please sign in again.');
    } else if (err instanceof ApiError) {
      toast(err.message, 'error');
    } else {
      toast(`Request failed: ${err.message || err}`, 'error');
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function showSignIn(message = '') {
  $('#console').hidden = true;
  $('#who-box').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message;
  document.body.dataset.state = 'signed-out';
  $('#token').focus();
}

function showConsole() {
  $('#signin').hidden = true;
  $('#console').hidden = false;
  $('#who-box').hidden = false;
  $('#who').textContent = api.actor || '';
  document.body.dataset.state = 'signed-in';
  selectTab(state.tab);
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('#token').value.trim();
  const name = $('#name').value.trim();
  $('#signin-submit').disabled = true;
  try {
    await api.signIn(token, name);
    $('#token').value = '';
    showConsole();
  } catch (err) {
    let message = 'Sign-in failed.';
    if (err instanceof Unauthorized) message = 'Wrong token.';
    else if (err instanceof ApiError && err.status === 429) message = 'Too many attempts; wait a minute.';
    $('#signin-error').textContent = message;
  } finally {
    $('#signin-submit').disabled = false;
  }
});

$('#sign-out').addEventListener('click', async () => {
  await run(() => api.signOut());
  showSignIn('Signed out.');
});

// ---------------------------------------------------------------------------------------------
// Tabs

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll('.tab')) {
    const selected = button.dataset.tab === tab;
    button.setAttribute('aria-selected', String(selected));
    $(`#view-${button.dataset.tab}`).hidden = !selected;
  }
  if (tab === 'queue') loadReports();
  if (tab === 'bans') loadBans();
  if (tab === 'audit') loadAudit();
}

for (const button of document.querySelectorAll('.tab')) {
  button.addEventListener('click', () => selectTab(button.dataset.tab));
}

// ---------------------------------------------------------------------------------------------
// Queue

async function loadReports(append = false) {
  const data = await run(() => api.reports({
    status: $('#filter-status').value,
    source: $('#filter-source').value,
    before: append ? state.reportsBefore : null,
  }));
  if (!data) return;
  const list = $('#reports');
  if (!append) list.replaceChildren();
  for (const report of data.reports) list.append(renderReport(report));
  state.reportsBefore = data.next_before;
  $('#more-reports').hidden = !data.next_before;
  $('#reports-empty').hidden = list.children.length > 0;
  if ($('#filter-status').value === 'open') {
    $('#queue-count').textContent = list.children.length ? String(list.children.length) + (data.next_before ? '+' : '') : '';
  }
}

function renderReport(report) {
  const card = el('li', { cls: 'card report', attrs: { 'data-report-id': report.id, 'data-status': report.status } });
  const title = el('h3', { cls: 'card__title' }, [
    el('span', { text: `#${report.id} ` }),
    el('span', { text: REASONS[report.reason] || report.reason }),
  ]);
  const badges = el('div', { cls: 'badges' }, [
    el('span', { cls: `badge badge--${report.source}`, text: report.source === 'automatic' ? 'Automatic' : 'Report' }),
    el('span', { cls: `badge badge--${report.status}`, text: STATUS_TEXT[report.status] || report.status }),
  ]);
  card.append(el('div', { cls: 'card__head' }, [title, badges]));

  const meta = el('dl', { cls: 'meta' });
  const add = (term, value) => meta.append(el('dt', { text: term }), el('dd', { text: value }));
  add('When', when(report.created_at));
  add('Reported', `device ${short(report.reported.device)}` + (report.reported.address_hash ? ' · address known' : ' · address exempt'));
  if (report.reporter) add('By', `device ${short(report.reporter.device)}`);
  if (report.status !== 'open' && report.resolved_by) add('Decided', `${report.resolved_by}, ${when(report.resolved_at)}`);
  card.append(meta);

  if (report.note) card.append(el('blockquote', { cls: 'note', text: report.note }));
  const labels = Object.entries(report.labels || {});
  if (labels.length) {
    card.append(el('p', { cls: 'labels', text: labels.map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(' · ') }));
  }

  const pictures = el('div', { cls: 'evidence' });
  for (const item of report.evidence || []) {
    const img = el('img', {
      attrs: { src: item.url, alt: `Picture of the reported person, ${when(item.captured_at)}`, loading: 'lazy',
        width: String(item.width), height: String(item.height), 'data-evidence-id': String(item.id) },
    });
    pictures.append(el('a', { cls: 'evidence__item', attrs: { href: item.url, target: '_blank', rel: 'noopener' } }, [img]));
  }
  if (!(report.evidence || []).length) pictures.append(el('p', { cls: 'muted', text: 'No pictures (none captured, or deleted after the retention period).' }));
  card.append(pictures);

  const history = el('p', { cls: 'history muted' });
  const historyButton = el('button', { cls: 'btn btn--ghost btn--small', text: 'History', attrs: { type: 'button' } });
  historyButton.addEventListener('click', async () => {
    const detail = await run(() => api.report(report.id));
    if (!detail) return;
    const h = detail.history;
    const active = detail.bans.filter((b) => b.active).length;
    history.textContent = `This device: ${h.reports} reports, ${h.strikes} strikes, ${h.bans} bans (${active} in force).`;
  });

  card.append(renderActions(report, historyButton), history);
  return card;
}

function renderActions(report, historyButton) {
  const box = el('div', { cls: 'actions' });
  const dismiss = el('button', { cls: 'btn btn--ghost', text: 'Dismiss', attrs: { type: 'button', 'data-action': 'dismiss' } });
  const warn = el('button', { cls: 'btn btn--warn', text: 'Warn', attrs: { type: 'button', 'data-action': 'warn' } });
  dismiss.addEventListener('click', () => act(report.id, { action: 'dismiss' }, box));
  warn.addEventListener('click', () => act(report.id, { action: 'warn', reason: reason.value || undefined }, box));

  const duration = el('select', { attrs: { 'aria-label': 'Ban duration', 'data-field': 'duration' } });
  for (const [seconds, label] of DURATIONS) duration.append(el('option', { text: label, attrs: { value: String(seconds) } }));
  duration.value = '86400';
  const scope = el('select', { attrs: { 'aria-label': 'Ban scope', 'data-field': 'scope' } }, [
    el('option', { text: 'Device', attrs: { value: 'device' } }),
    el('option', { text: 'Device and address', attrs: { value: 'device+address' } }),
  ]);
  const reason = el('input', { attrs: { type: 'text', maxlength: '500', placeholder: 'Reason (shown to them)', 'aria-label': 'Reason', 'data-field': 'reason' } });
  const ban = el('button', { cls: 'btn btn--danger', text: 'Ban', attrs: { type: 'button', 'data-action': 'ban' } });
  ban.addEventListener('click', () => act(report.id, {
    action: 'ban', duration_s: Number(duration.value), scope: scope.value, reason: reason.value || undefined,
  }, box));

  box.append(
    el('div', { cls: 'actions__row' }, [dismiss, warn, historyButton]),
    el('div', { cls: 'actions__row actions__ban' }, [duration, scope, reason, ban]),
  );
  return box;
}

async function act(id, action, box) {
  for (const button of box.querySelectorAll('button')) button.disabled = true;
  const result = await run(() => api.act(id, action));
  for (const button of box.querySelectorAll('button')) button.disabled = false;
  if (!result) return;
  if (action.action === 'ban' && result.ban) {
    toast(`Report #${id}: banned until ${when(result.ban.until)}.`);
  } else if (result.ban) {
    toast(`Report #${id}: warned; that was one strike too many: banned until ${when(result.ban.until)}.`);
  } else {
    toast(`Report #${id}: ${STATUS_TEXT[result.report.status] || result.report.status}.`);
  }
  loadReports();
}

$('#filter-status').addEventListener('change', () => loadReports());
$('#filter-source').addEventListener('change', () => loadReports());
$('#refresh-queue').addEventListener('click', () => loadReports());
$('#more-reports').addEventListener('click', () => loadReports(true));

// ---------------------------------------------------------------------------------------------
// Bans

async function loadBans() {
  const data = await run(() => api.bans($('#bans-all').checked));
  if (!data) return;
  const list = $('#bans');
  list.replaceChildren(...data.bans.map(renderBan));
  $('#bans-empty').hidden = data.bans.length > 0;
}

function renderBan(ban) {
  const card = el('li', { cls: 'card ban', attrs: { 'data-ban-id': ban.id, 'data-active': String(ban.active) } });
  card.append(el('div', { cls: 'card__head' }, [
    el('h3', { cls: 'card__title', text: `Ban #${ban.id} · device ${short(ban.device)}` }),
    el('div', { cls: 'badges' }, [
      el('span', { cls: 'badge', text: ban.scope === 'device+address' ? 'Device and address' : 'Device' }),
      el('span', { cls: `badge ${ban.active ? 'badge--banned' : ''}`, text: ban.active ? 'In force' : (ban.lifted_at ? 'Lifted' : 'Expired') }),
    ]),
  ]));
  const meta = el('dl', { cls: 'meta' });
  const add = (term, value) => meta.append(el('dt', { text: term }), el('dd', { text: value }));
  add('Reason', ban.reason);
  add('Until', when(ban.until));
  add('By', `${ban.created_by}, ${when(ban.created_at)}`);
  if (ban.report_id) add('Report', `#${ban.report_id}`);
  if (ban.lifted_at) add('Lifted', `${ban.lifted_by}, ${when(ban.lifted_at)}`);
  card.append(meta);
  if (ban.active) {
    const unban = el('button', { cls: 'btn btn--ghost', text: 'Unban', attrs: { type: 'button', 'data-action': 'unban' } });
    unban.addEventListener('click', async () => {
      unban.disabled = true;
      const result = await run(() => api.unban(ban.id));
      unban.disabled = false;
      if (result) {
        toast(`Ban #${ban.id} lifted.`);
        loadBans();
      }
    });
    card.append(el('div', { cls: 'actions__row' }, [unban]));
  }
  return card;
}

$('#bans-all').addEventListener('change', loadBans);
$('#refresh-bans').addEventListener('click', loadBans);

// ---------------------------------------------------------------------------------------------
// Audit log

async function loadAudit(append = false) {
  const data = await run(() => api.audit(append ? state.auditBefore : null));
  if (!data) return;
  const list = $('#audit');
  if (!append) list.replaceChildren();
  for (const entry of data.entries) list.append(renderAudit(entry));
  state.auditBefore = data.next_before;
  $('#more-audit').hidden = !data.next_before;
  $('#audit-empty').hidden = list.children.length > 0;
}

function renderAudit(entry) {
  const detail = Object.entries(entry.detail || {})
    .filter(([, v]) => v !== null && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`)
    .join(' · ');
  return el('li', { cls: 'audit__entry', attrs: { 'data-action': entry.action } }, [
    el('span', { cls: 'audit__when', text: when(entry.at) }),
    el('span', { cls: 'audit__what', text: `${entry.actor} — ${entry.action} ${entry.target_type}${entry.target_id ? ` #${entry.target_id}` : ''}` }),
    detail ? el('span', { cls: 'audit__detail muted', text: detail }) : null,
  ]);
}

$('#refresh-audit').addEventListener('click', () => loadAudit());
$('#more-audit').addEventListener('click', () => loadAudit(true));

// ---------------------------------------------------------------------------------------------
// Start: resume a session if the cookie is still valid.

(async () => {
  try {
    await api.resume();
    showConsole();
  } catch (err) {
    showSignIn('');
  }
  window.modConsole = { api, ready: true };
})();
