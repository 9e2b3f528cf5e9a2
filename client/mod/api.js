// The moderator API as the console uses it: same-origin cookie session + CSRF header on changes.

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export class ModApi {
  constructor() {
    this.csrf = null;
    this.actor = null;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (response.status === 401) {
      this.csrf = null;
      throw new Unauthorized('signed out');
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.error, data && data.message);
    }
    return data;
  }

  async signIn(token, name) {
    const data = await this.request('POST', '/api/mod/session', { token, name });
    this.csrf = data.csrf;
    this.actor = data.actor;
    return data;
  }

  async resume() {
    const data = await this.request('GET', '/api/mod/session');
    this.csrf = data.csrf;
    this.actor = data.actor;
    return data;
  }

  async signOut() {
    try {
      await this.request('DELETE', '/api/mod/session');
    } finally {
      this.csrf = null;
      this.actor = null;
    }
  }

  reports({ status = 'open', source = '', before = null } = {}) {
    const q = new URLSearchParams({ status });
    if (source) q.set('source', source);
    if (before) q.set('before', String(before));
    return this.request('GET', `/api/mod/reports?${q}`);
  }

  report(id) {
    return this.request('GET', `/api/mod/reports/${encodeURIComponent(id)}`);
  }

  act(id, action) {
    return this.request('POST', `/api/mod/reports/${encodeURIComponent(id)}/actions`, action);
  }

  bans(all = false) {
    return this.request('GET', `/api/mod/bans${all ? '?all=1' : ''}`);
  }

  unban(id) {
    return this.request('DELETE', `/api/mod/bans/${encodeURIComponent(id)}`);
  }

  audit(before = null) {
    return this.request('GET', `/api/mod/audit${before ? `?before=${encodeURIComponent(before)}` : ''}`);
  }
}
